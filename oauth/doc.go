// Package oauth implements OAuth 1.0a request signing and OAuth 2.0 flows for extapi's upstream
// providers. It knows nothing of the proxy's or the management API's HTTP servers; those layers map
// its errors to statuses.
package oauth
