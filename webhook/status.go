package webhook

import (
	"errors"
	"net/http"
)

// Errors of the listener, besides the verification errors.
var (
	// ErrUnknownAPI: no live API with that id and slug, or its webhook is not fully configured.
	ErrUnknownAPI = errors.New("webhook: unknown API")
	// ErrTooLarge: the body is above the size limit.
	ErrTooLarge = errors.New("webhook: body too large")
	// errMethod: a method the route does not serve.
	errMethod = errors.New("webhook: method not allowed")
)

// Rejection reasons, the values of the rejected metric's reason label.
const (
	ReasonSignature  = "signature"
	ReasonStale      = "stale"
	ReasonMalformed  = "malformed"
	ReasonTooLarge   = "too_large"
	ReasonUnknownAPI = "unknown_api"
	ReasonMethod     = "method"
	ReasonInternal   = "internal"
)

// classify is the one place an error of the listener becomes a status, the body the provider
// sees, and the rejection reason. Bodies say no more than the class of failure: a provider (or
// an attacker) learns nothing of why a signature did not verify.
func classify(err error) (status int, body, reason string) {
	var big *http.MaxBytesError
	switch {
	case errors.Is(err, ErrSignature):
		return http.StatusUnauthorized, "invalid signature", ReasonSignature
	case errors.Is(err, ErrStale):
		return http.StatusUnauthorized, "invalid signature", ReasonStale
	case errors.Is(err, ErrMalformed):
		return http.StatusBadRequest, "malformed request", ReasonMalformed
	case errors.Is(err, ErrTooLarge), errors.As(err, &big):
		return http.StatusRequestEntityTooLarge, "request body too large", ReasonTooLarge
	case errors.Is(err, ErrUnknownAPI):
		return http.StatusNotFound, "not found", ReasonUnknownAPI
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed, "method not allowed", ReasonMethod
	}
	// Storage failures: the provider retries later, which is what we want, since nothing was
	// acknowledged.
	return http.StatusServiceUnavailable, "temporarily unavailable", ReasonInternal
}
