// Package metrics defines extapi's Prometheus series and the per-API handles that the request
// path records into without allocating.
//
// Everything is registered on the Registerer given to New: there are no package globals, so
// tests and several gateways in one process each get their own series. Labels are bounded by
// construction: api is a configured slug (or "unknown"), method one of eight values, code a
// valid status code (or "other"), and kinds, reasons, results and events are small enums.
package metrics
