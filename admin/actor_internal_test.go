package admin

import (
	"testing"

	"github.com/extapi/extapi/store"
)

// Token names are unique per tenant only; the audit actor must tell same-named tokens apart.
func TestActorName(t *testing.T) {
	for _, tc := range []struct {
		desc, name string
		tenant     store.Tenant
		want       string
	}{
		{"unscoped", "ci", store.Tenant{}, "ci"},
		{"sales channel", "ci", store.Tenant{SalesChannelID: "sc_1"}, "ci@sc_1/"},
		{"partner", "ci", store.Tenant{PartnerID: "p_2"}, "ci@/p_2"},
		{"both", "ci", store.Tenant{SalesChannelID: "sc_1", PartnerID: "p_2"}, "ci@sc_1/p_2"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if got := actorName(tc.name, tc.tenant); got != tc.want {
				t.Errorf("actorName(%q, %+v) = %q; want %q", tc.name, tc.tenant, got, tc.want)
			}
		})
	}
}
