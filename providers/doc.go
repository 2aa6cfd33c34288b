// Package providers holds extapi's catalogue of provider templates (one reviewable YAML file
// per provider, embedded in the binary), the recognition of the environment variables teams
// used before extapi, and the templating of base URLs and headers ({{provider_data.X}},
// {{api_version}}, {{region}}) with the escape rules that keep a placeholder inside the host
// label or path segment it fills.
package providers
