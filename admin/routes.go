package admin

// routeTable is every route of the admin listener. New registers exactly these, and
// TestOpenAPIMatchesRoutes fails when admin/openapi.json and this table disagree.
var routeTable = []route{
	{"GET", "/healthz", rolePublic, (*Server).healthz},
	{"GET", "/readyz", rolePublic, (*Server).readyz},
	{"GET", "/admin/openapi.json", roleViewer, (*Server).openapi},

	{"GET", "/admin/external-apis", roleViewer, (*Server).listAPIs},
	{"POST", "/admin/external-apis", roleEditor, (*Server).createAPI},
	{"GET", "/admin/external-apis/{id}", roleViewer, (*Server).getAPI},
	{"PATCH", "/admin/external-apis/{id}", roleEditor, (*Server).patchAPI},
	{"DELETE", "/admin/external-apis/{id}", roleEditor, (*Server).deleteAPI},

	{"GET", "/admin/external-apis/{id}/connections", roleViewer, (*Server).listConnections},
	{"POST", "/admin/external-apis/{id}/connections", roleEditor, (*Server).createConnection},
	{"GET", "/admin/connections/{id}", roleViewer, (*Server).getConnection},
	{"PATCH", "/admin/connections/{id}", roleEditor, (*Server).patchConnection},
	{"DELETE", "/admin/connections/{id}", roleEditor, (*Server).deleteConnection},

	{"GET", "/admin/external-apis/{id}/oauth1/authorize", roleEditor, (*Server).oauth1Authorize},
	{"GET", "/admin/external-apis/{id}/oauth1/callback", rolePublic, (*Server).oauth1Callback},

	{"GET", "/admin/external-apis/{id}/oauth/authorize", roleEditor, (*Server).oauth2Authorize},
	{"GET", "/admin/external-apis/{id}/oauth/callback", rolePublic, (*Server).oauth2Callback},
	{"POST", "/admin/connections/{id}/refresh", roleEditor, (*Server).refreshConnection},

	{"GET", "/admin/audit-events", roleViewer, (*Server).listAudit},

	{"GET", "/admin/webhook-events", roleViewer, (*Server).listWebhookEvents},
	{"POST", "/admin/webhook-events/{id}/redeliver", roleEditor, (*Server).redeliverWebhookEvent},

	{"GET", "/admin/templates", roleViewer, (*Server).listTemplates},
	{"GET", "/admin/templates/{slug}", roleViewer, (*Server).getTemplate},

	{"GET", "/admin/tokens", roleAdmin, (*Server).listTokens},
	{"POST", "/admin/tokens", roleAdmin, (*Server).createToken},
	{"DELETE", "/admin/tokens/{id}", roleAdmin, (*Server).revokeToken},
}
