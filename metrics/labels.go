package metrics

import "strconv"

// Method is an HTTP method reduced to the bounded set extapi labels by: the standard methods,
// and MethodOther for everything else a caller might send.
type Method uint8

// Methods, in label order.
const (
	MethodGet Method = iota
	MethodPost
	MethodPut
	MethodPatch
	MethodDelete
	MethodHead
	MethodOptions
	MethodOther
	numMethods
)

var methodLabels = [numMethods]string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other"}

// String is the method's label value.
func (m Method) String() string {
	if m >= numMethods {
		return methodLabels[MethodOther]
	}
	return methodLabels[m]
}

// ParseMethod maps a request method to its label. Methods are case-sensitive (RFC 9110 §9.1):
// "get" is MethodOther.
func ParseMethod(s string) Method {
	switch s {
	case "GET":
		return MethodGet
	case "POST":
		return MethodPost
	case "PUT":
		return MethodPut
	case "PATCH":
		return MethodPatch
	case "DELETE":
		return MethodDelete
	case "HEAD":
		return MethodHead
	case "OPTIONS":
		return MethodOptions
	}
	return MethodOther
}

// ParseMethodBytes is ParseMethod for fasthttp's RequestCtx.Method(); it does not allocate and
// keeps no reference to b.
func ParseMethodBytes(b []byte) Method {
	// ParseMethod is inlined here, and a switch on string(b) does not allocate.
	return ParseMethod(string(b))
}

// Status codes are labelled with their three digits; anything outside 100..599 (a status that
// cannot be valid, or 0 for "no response") is labelled codeOther, so a misbehaving upstream
// cannot mint new series.
const (
	minCode   = 100
	maxCode   = 599
	codeOther = "other"
	// numCodeSlots is one slot per valid code plus one for codeOther.
	numCodeSlots = maxCode - minCode + 2
	otherSlot    = numCodeSlots - 1
)

// codeLabels[slot] is the label value of a status code slot, built once so that recording
// needs no strconv.
var codeLabels = func() (t [numCodeSlots]string) {
	for c := minCode; c <= maxCode; c++ {
		t[c-minCode] = strconv.Itoa(c)
	}
	t[otherSlot] = codeOther
	return t
}()

func codeSlot(code int) int {
	if code < minCode || code > maxCode {
		return otherSlot
	}
	return code - minCode
}

// CodeLabel is the label value extapi records for an HTTP status code.
func CodeLabel(code int) string { return codeLabels[codeSlot(code)] }

// ErrorKind classifies an upstream request that got no HTTP response.
type ErrorKind uint8

// Upstream error kinds, the values of extapi_upstream_errors_total's kind label.
const (
	ErrorTimeout ErrorKind = iota // the upstream did not answer in time
	ErrorConnect                  // dial failed: DNS, refused, unreachable
	ErrorReset                    // the connection broke mid-request (reset, EOF)
	ErrorTLS                      // TLS handshake or certificate failure
	ErrorOther                    // none of the above
	numErrorKinds
)

var errorKindLabels = [numErrorKinds]string{"timeout", "connect", "reset", "tls", "other"}

// String is the kind's label value.
func (k ErrorKind) String() string {
	if k >= numErrorKinds {
		return errorKindLabels[ErrorOther]
	}
	return errorKindLabels[k]
}

// RetryReason says why the proxy sent an upstream request again.
type RetryReason uint8

// Retry reasons, the values of extapi_retries_total's reason label.
const (
	RetryTimeout      RetryReason = iota // the previous attempt timed out
	RetryConnect                         // the previous attempt could not connect
	RetryReset                           // the previous attempt's connection broke
	RetryStatus429                       // the upstream answered 429 Too Many Requests
	RetryStatus5xx                       // the upstream answered a retryable 5xx (502, 503, 504)
	RetryUnauthorized                    // the upstream answered 401 and the token was refreshed
	RetryOther                           // none of the above
	numRetryReasons
)

var retryReasonLabels = [numRetryReasons]string{"timeout", "connect", "reset", "status_429", "status_5xx", "unauthorized", "other"}

// String is the reason's label value.
func (r RetryReason) String() string {
	if r >= numRetryReasons {
		return retryReasonLabels[RetryOther]
	}
	return retryReasonLabels[r]
}

// RefreshResult is the outcome of one OAuth token refresh.
type RefreshResult uint8

// Refresh results, the values of extapi_token_refresh_total's result label.
const (
	RefreshSuccess      RefreshResult = iota // a new access token was obtained
	RefreshInvalidGrant                      // the provider refused the grant (RFC 6749 invalid_grant): the connection needs re-authorisation
	RefreshError                             // any other failure: transport, timeout, 5xx, malformed answer
	numRefreshResults
)

var refreshResultLabels = [numRefreshResults]string{"success", "invalid_grant", "error"}

// String is the result's label value.
func (r RefreshResult) String() string {
	if r >= numRefreshResults {
		return refreshResultLabels[RefreshError]
	}
	return refreshResultLabels[r]
}

// CacheEvent is what happened in the route and connection cache.
type CacheEvent uint8

// Cache events, the values of extapi_cache_events_total's event label.
const (
	CacheHit          CacheEvent = iota // served from the cache
	CacheMiss                           // loaded from the store
	CacheInvalidation                   // an entry was dropped because the store changed
	numCacheEvents
)

var cacheEventLabels = [numCacheEvents]string{"hit", "miss", "invalidation"}

// String is the event's label value.
func (e CacheEvent) String() string {
	if e >= numCacheEvents {
		return "other"
	}
	return cacheEventLabels[e]
}

// UnknownAPI is the api label of requests that resolve to no configured API. The raw path is
// never a label.
const UnknownAPI = "unknown"

// maxLabelLen bounds label values that come from configuration (slugs, connection statuses),
// so that a mistake there cannot put a kilobyte string on every series.
const maxLabelLen = 128

// boundedLabel returns v, or fallback when v is empty, too long or not printable ASCII.
func boundedLabel(v, fallback string) string {
	if v == "" || len(v) > maxLabelLen {
		return fallback
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f {
			return fallback
		}
	}
	return v
}
