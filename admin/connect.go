package admin

import (
	"net/http"

	"github.com/extapi/extapi/store"
)

// What the authorize routes of the OAuth 2.0 and OAuth 1.0a connect flows share.

// connectStart is an authorize request read and checked: the API (as the caller's tenant sees
// it) and the fields of the connection the callback will create.
type connectStart struct {
	api                                     *store.ExternalAPI
	name, userID, partnerID, salesChannelID string
	json                                    bool // format=json: answer with the URL, not a redirect
}

// startConnect reads an authorize request of the API in the path: the query parameters
// connection_name, user_id, partner_id, sales_channel_id and format, the tenant forced to the
// caller's, and the API, which must be visible to the caller and whose tenant a given partner or
// sales channel must match. configured false answers 503 with unconfigured as the message.
func (s *Server) startConnect(r *http.Request, who *principal, configured bool, unconfigured string) (*connectStart, error) {
	id := r.PathValue("id")
	if !validID(store.PrefixAPI, id) {
		return nil, notFound("external API")
	}
	if !configured {
		return nil, withMessage(errUnavailable, unconfigured)
	}
	q, err := parseQuery(r, "connection_name", "user_id", "partner_id", "sales_channel_id", "format")
	if err != nil {
		return nil, err
	}
	st := &connectStart{name: q.text("connection_name"), userID: q.text("user_id"),
		partnerID: q.text("partner_id"), salesChannelID: q.text("sales_channel_id")}
	st.json = q.enum("format", []string{"json", "redirect"}) == "json"
	if err := q.err(); err != nil {
		return nil, err
	}
	var bad problems
	text(&bad, "query.connection_name", st.name, maxNameLen, false)
	text(&bad, "query.user_id", st.userID, maxIDLen, false)
	text(&bad, "query.partner_id", st.partnerID, maxIDLen, false)
	text(&bad, "query.sales_channel_id", st.salesChannelID, maxIDLen, false)
	if err := bad.err(); err != nil {
		return nil, err
	}
	if err := forceTenant(who, &st.salesChannelID, &st.partnerID); err != nil {
		return nil, err
	}
	if st.api, err = s.store.GetAPI(r.Context(), id, who.tenant); err != nil {
		return nil, withNotFound(err, "external API")
	}
	// A connection of a tenant's API belongs to that tenant, as validateConn has it.
	if st.api.SalesChannelID != "" && st.salesChannelID != "" && st.salesChannelID != st.api.SalesChannelID {
		bad.add("query.sales_channel_id", "must be the sales channel of the API (or omitted)")
	}
	if st.api.PartnerID != "" && st.partnerID != "" && st.partnerID != st.api.PartnerID {
		bad.add("query.partner_id", "must be the partner of the API (or omitted)")
	}
	if err := bad.err(); err != nil {
		return nil, err
	}
	return st, nil
}

// answer sends the caller to the provider's authorization URL, or with format=json answers
// {"authorization_url": …}.
func (st *connectStart) answer(w http.ResponseWriter, r *http.Request, authURL string) {
	if st.json {
		writeJSON(w, http.StatusOK, map[string]string{"authorization_url": authURL})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authURL, http.StatusFound)
}

// flowError answers an error of a connect flow or token route in the one error shape, as
// problem maps it (5xx are logged with msg), or hands an error problem does not know back to
// classify.
func (s *Server) flowError(w http.ResponseWriter, r *http.Request, err error,
	problem func(error) (int, errorObject, bool), msg string) error {
	status, obj, ok := problem(err)
	if !ok {
		return err
	}
	if status >= 500 {
		s.log.Error(msg, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, errorBody{obj})
	return nil
}
