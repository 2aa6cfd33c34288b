package admin

import (
	"errors"
	"net/http"

	"github.com/extapi/extapi/store"
)

// Detail is one problem of a request, at a JSON path of its body (or "query.NAME" for a query
// parameter). Messages never repeat the value that was sent: it may be a secret.
type Detail struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// ValidationError lists every problem of a request at once. It maps to 400 validation_failed.
type ValidationError struct {
	Details []Detail
}

func (e *ValidationError) Error() string {
	if len(e.Details) == 1 {
		return "validation failed: " + e.Details[0].Path + ": " + e.Details[0].Message
	}
	return "validation failed"
}

// problems collects Details; err returns nil when there are none.
type problems []Detail

func (p *problems) add(path, msg string) { *p = append(*p, Detail{Path: path, Message: msg}) }

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Details: p}
}

// Sentinels of the admin layer. Handlers wrap them (and store's) with withMessage to say more.
var (
	// errUnauthenticated: no bearer token, or one that is unknown or revoked.
	errUnauthenticated = errors.New("missing or invalid bearer token")
	// errForbidden: the token's role or tenant may not do this.
	errForbidden = errors.New("forbidden")
	// errMalformed: the body is not JSON, not one JSON object, or is empty.
	errMalformed = errors.New("malformed request body")
	// errMediaType: a Content-Type other than JSON.
	errMediaType = errors.New("unsupported media type")
	// errUnavailable: the server was built without the store or the sealer.
	errUnavailable = errors.New("management API not configured")
	// errNoRoute / errMethod: no route has this path / this method.
	errNoRoute = errors.New("no such route")
	errMethod  = errors.New("method not allowed")
)

// messageError attaches a message meant for the client to an error; the status still comes from
// the error it wraps.
type messageError struct {
	msg string
	err error
}

func (e *messageError) Error() string { return e.msg }
func (e *messageError) Unwrap() error { return e.err }

// withMessage wraps err (a sentinel of this package or of store) with a client-facing message.
func withMessage(err error, msg string) error { return &messageError{msg: msg, err: err} }

// errorBody is the one error shape of the management API.
type errorBody struct {
	Error errorObject `json:"error"`
}

type errorObject struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Details []Detail `json:"details,omitempty"`
}

// classify is the one place an error becomes an HTTP status and a response body. internal is
// true for errors the client did not cause; they are logged and shown only as "internal error".
func classify(err error) (status int, body errorBody, internal bool) {
	var (
		verr *ValidationError
		big  *http.MaxBytesError
		msg  *messageError
	)
	obj := errorObject{}
	switch {
	case errors.As(err, &verr):
		status, obj.Code, obj.Message, obj.Details = http.StatusBadRequest, "validation_failed",
			"the request has problems; see details", verr.Details
		if len(verr.Details) == 1 {
			obj.Message = verr.Details[0].Message
			if verr.Details[0].Path != "" {
				obj.Message = verr.Details[0].Path + ": " + obj.Message
			}
		}
	case errors.As(err, &big):
		status, obj.Code, obj.Message = http.StatusRequestEntityTooLarge, "body_too_large",
			"the request body is larger than 1 MiB"
	case errors.Is(err, errMalformed):
		status, obj.Code, obj.Message = http.StatusBadRequest, "malformed_json", "the request body is not a JSON object"
	case errors.Is(err, errMediaType):
		status, obj.Code, obj.Message = http.StatusUnsupportedMediaType, "unsupported_media_type",
			"send the body as Content-Type: application/json"
	case errors.Is(err, errUnauthenticated):
		status, obj.Code, obj.Message = http.StatusUnauthorized, "unauthorized", errUnauthenticated.Error()
	case errors.Is(err, errForbidden):
		status, obj.Code, obj.Message = http.StatusForbidden, "forbidden", "this token may not do that"
	case errors.Is(err, store.ErrNotFound), errors.Is(err, errNoRoute):
		status, obj.Code, obj.Message = http.StatusNotFound, "not_found", "not found"
	case errors.Is(err, errMethod):
		status, obj.Code, obj.Message = http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route"
	case errors.Is(err, store.ErrConflict):
		status, obj.Code, obj.Message = http.StatusConflict, "conflict", "conflicts with an existing row"
	case errors.Is(err, errUnavailable):
		status, obj.Code, obj.Message = http.StatusServiceUnavailable, "unavailable", errUnavailable.Error()
	default:
		return http.StatusInternalServerError, errorBody{errorObject{Code: "internal", Message: "internal error"}}, true
	}
	if errors.As(err, &msg) {
		obj.Message = msg.msg
	}
	return status, errorBody{obj}, false
}
