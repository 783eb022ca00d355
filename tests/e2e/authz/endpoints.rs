//! Every endpoint of the API, and what a caller needs to use it: the table
//! the authorization walk goes through.

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Need {
    Public,
    /// No token needed, but a presented token must be valid.
    OptionalToken,
    Authenticated,
    PlatformAdmin,
    Workspace(&'static str),
}

/// Every endpoint and what it needs.
pub(super) const ENDPOINTS: &[(&str, &str, Need)] = &[
    ("get", "/healthz", Need::Public),
    ("get", "/api/v1/me", Need::Authenticated),
    ("get", "/api/v1/tokens", Need::Authenticated),
    ("put", "/api/v1/me/password", Need::Authenticated),
    ("post", "/api/v1/tokens", Need::Authenticated),
    ("delete", "/api/v1/tokens/{id}", Need::Authenticated),
    ("get", "/api/v1/workspaces", Need::Authenticated),
    ("post", "/api/v1/workspaces", Need::PlatformAdmin),
    (
        "get",
        "/api/v1/workspaces/{slug}",
        Need::Workspace("workspace.read"),
    ),
    (
        "get",
        "/api/v1/workspaces/{slug}/settings",
        Need::Workspace("workspace.read"),
    ),
    (
        "put",
        "/api/v1/workspaces/{slug}/settings/{key}",
        Need::Workspace("workspace.settings"),
    ),
    (
        "delete",
        "/api/v1/workspaces/{slug}/settings/{key}",
        Need::Workspace("workspace.settings"),
    ),
    (
        "get",
        "/api/v1/workspaces/{slug}/export",
        Need::Workspace("workspace.export"),
    ),
    ("get", "/api/v1/templates", Need::Authenticated),
    ("post", "/api/v1/templates", Need::PlatformAdmin),
    ("get", "/api/v1/templates/{name}", Need::Authenticated),
    ("delete", "/api/v1/templates/{name}", Need::PlatformAdmin),
    ("get", "/api/v1/roles", Need::Authenticated),
    (
        "get",
        "/api/v1/workspaces/{slug}/roles",
        Need::Workspace("workspace.read"),
    ),
    (
        "post",
        "/api/v1/workspaces/{slug}/roles",
        Need::Workspace("role.manage"),
    ),
    (
        "delete",
        "/api/v1/workspaces/{slug}/roles/{name}",
        Need::Workspace("role.manage"),
    ),
    (
        "get",
        "/api/v1/workspaces/{slug}/members",
        Need::Workspace("member.read"),
    ),
    (
        "delete",
        "/api/v1/workspaces/{slug}/members/{email}",
        Need::Workspace("member.remove"),
    ),
    (
        "patch",
        "/api/v1/workspaces/{slug}/members/{email}",
        Need::Workspace("role.manage"),
    ),
    (
        "get",
        "/api/v1/workspaces/{slug}/invites",
        Need::Workspace("member.read"),
    ),
    (
        "post",
        "/api/v1/workspaces/{slug}/invites",
        Need::Workspace("member.invite"),
    ),
    (
        "delete",
        "/api/v1/workspaces/{slug}/invites/{id}",
        Need::Workspace("member.invite"),
    ),
    (
        "post",
        "/api/v1/workspaces/{slug}/invites/{id}/resend",
        Need::Workspace("member.invite"),
    ),
    (
        "post",
        "/api/v1/workspaces/{slug}/invites/bulk",
        Need::Workspace("member.invite"),
    ),
    (
        "post",
        "/api/v1/invites/{token}/accept",
        Need::OptionalToken,
    ),
    (
        "get",
        "/api/v1/workspaces/{slug}/audit",
        Need::Workspace("audit.read"),
    ),
    ("get", "/api/v1/audit/events", Need::PlatformAdmin),
    (
        "get",
        "/api/v1/workspaces/{slug}/audit/verify",
        Need::Workspace("audit.read"),
    ),
    ("get", "/api/v1/audit/verify", Need::PlatformAdmin),
    (
        "get",
        "/api/v1/workspaces/{slug}/audit/checkpoints",
        Need::Workspace("audit.read"),
    ),
    (
        "post",
        "/api/v1/workspaces/{slug}/audit/checkpoints",
        Need::Workspace("audit.read"),
    ),
    ("get", "/api/v1/audit/checkpoints", Need::PlatformAdmin),
    ("post", "/api/v1/audit/checkpoints", Need::PlatformAdmin),
    ("get", "/api/v1/audit/public-key", Need::Public),
    ("get", "/api/v1/plugins", Need::Authenticated),
    ("get", "/api/v1/plugins/{name}", Need::Authenticated),
    (
        "post",
        "/api/v1/plugins/{name}/disable",
        Need::PlatformAdmin,
    ),
    ("post", "/api/v1/plugins/{name}/enable", Need::PlatformAdmin),
    (
        "post",
        "/api/v1/plugins/{name}/approve",
        Need::PlatformAdmin,
    ),
    ("put", "/api/v1/plugins/{name}/tier", Need::PlatformAdmin),
    ("get", "/metrics", Need::PlatformAdmin),
    ("get", "/plugins/{name}/assets/{path}", Need::Public),
    ("get", "/api/v1/field-types", Need::Authenticated),
    ("get", "/api/v1/widgets", Need::Authenticated),
    (
        "get",
        "/api/v1/workspaces/{slug}/items",
        Need::Workspace("workspace.read"),
    ),
    (
        "post",
        "/api/v1/workspaces/{slug}/items",
        Need::Workspace("item.write"),
    ),
    (
        "get",
        "/api/v1/workspaces/{slug}/items/{id}",
        Need::Workspace("workspace.read"),
    ),
    (
        "patch",
        "/api/v1/workspaces/{slug}/items/{id}",
        Need::Workspace("item.write"),
    ),
    (
        "post",
        "/api/v1/workspaces/{slug}/items/{id}/transition",
        Need::Workspace("item.write"),
    ),
    (
        "post",
        "/api/v1/workspaces/{slug}/items/transitions",
        Need::Workspace("item.write"),
    ),
    (
        "get",
        "/api/v1/workspaces/{slug}/items/{id}/comments",
        Need::Workspace("workspace.read"),
    ),
    (
        "post",
        "/api/v1/workspaces/{slug}/items/{id}/comments",
        Need::Workspace("item.write"),
    ),
    (
        "patch",
        "/api/v1/workspaces/{slug}/items/{id}/comments/{comment}",
        Need::Workspace("workspace.read"),
    ),
    (
        "delete",
        "/api/v1/workspaces/{slug}/items/{id}/comments/{comment}",
        Need::Workspace("workspace.read"),
    ),
    (
        "get",
        "/api/v1/workspaces/{slug}/fields",
        Need::Workspace("workspace.read"),
    ),
    (
        "post",
        "/api/v1/workspaces/{slug}/fields",
        Need::Workspace("workspace.settings"),
    ),
    (
        "delete",
        "/api/v1/workspaces/{slug}/fields/{key}",
        Need::Workspace("workspace.settings"),
    ),
    (
        "get",
        "/api/v1/workspaces/{slug}/dashboard",
        Need::Workspace("workspace.read"),
    ),
    (
        "post",
        "/api/v1/workspaces/{slug}/dashboard/widgets",
        Need::Workspace("dashboard.edit"),
    ),
    (
        "delete",
        "/api/v1/workspaces/{slug}/dashboard/widgets/{id}",
        Need::Workspace("dashboard.edit"),
    ),
    (
        "put",
        "/api/v1/workspaces/{slug}/dashboard/widgets/{id}",
        Need::Workspace("dashboard.edit"),
    ),
    (
        "put",
        "/api/v1/workspaces/{slug}/dashboard/order",
        Need::Workspace("dashboard.edit"),
    ),
    (
        "get",
        "/api/v1/workspaces/{slug}/certificates",
        Need::Workspace("workspace.read"),
    ),
    (
        "post",
        "/api/v1/workspaces/{slug}/certificates",
        Need::Workspace("cert.manage"),
    ),
    (
        "get",
        "/api/v1/workspaces/{slug}/certificates/{id}",
        Need::Workspace("workspace.read"),
    ),
    (
        "delete",
        "/api/v1/workspaces/{slug}/certificates/{id}",
        Need::Workspace("cert.manage"),
    ),
    ("get", "/api/v1/scheduler/tasks", Need::PlatformAdmin),
    (
        "get",
        "/api/v1/scheduler/tasks/{name}/runs",
        Need::PlatformAdmin,
    ),
    (
        "post",
        "/api/v1/scheduler/tasks/{name}/run",
        Need::PlatformAdmin,
    ),
    ("get", "/api/v1/adapters", Need::Authenticated),
    (
        "get",
        "/api/v1/workspaces/{slug}/integrations",
        Need::Workspace("workspace.read"),
    ),
    (
        "post",
        "/api/v1/workspaces/{slug}/integrations",
        Need::Workspace("integration.manage"),
    ),
    (
        "get",
        "/api/v1/workspaces/{slug}/integrations/{name}",
        Need::Workspace("workspace.read"),
    ),
    (
        "patch",
        "/api/v1/workspaces/{slug}/integrations/{name}",
        Need::Workspace("integration.manage"),
    ),
    (
        "delete",
        "/api/v1/workspaces/{slug}/integrations/{name}",
        Need::Workspace("integration.manage"),
    ),
    (
        "post",
        "/api/v1/workspaces/{slug}/integrations/{name}/test",
        Need::Workspace("integration.manage"),
    ),
    (
        "get",
        "/api/v1/workspaces/{slug}/integrations/{name}/deliveries",
        Need::Workspace("workspace.read"),
    ),
    (
        "get",
        "/api/v1/workspaces/{slug}/playbooks",
        Need::Workspace("workspace.read"),
    ),
    (
        "post",
        "/api/v1/workspaces/{slug}/playbooks",
        Need::Workspace("playbook.edit"),
    ),
    (
        "get",
        "/api/v1/workspaces/{slug}/playbooks/{playbook}",
        Need::Workspace("workspace.read"),
    ),
    (
        "put",
        "/api/v1/workspaces/{slug}/playbooks/{playbook}",
        Need::Workspace("playbook.edit"),
    ),
    (
        "delete",
        "/api/v1/workspaces/{slug}/playbooks/{playbook}",
        Need::Workspace("playbook.edit"),
    ),
    (
        "post",
        "/api/v1/workspaces/{slug}/playbooks/{playbook}/run",
        Need::Workspace("playbook.run"),
    ),
    (
        "post",
        "/api/v1/workspaces/{slug}/playbooks/{playbook}/dry-run",
        Need::Workspace("playbook.dry_run"),
    ),
    (
        "get",
        "/api/v1/workspaces/{slug}/playbook-runs",
        Need::Workspace("workspace.read"),
    ),
    (
        "get",
        "/api/v1/workspaces/{slug}/playbook-runs/{id}",
        Need::Workspace("workspace.read"),
    ),
];
