//! Extractors: the API's JSON body reader and the bearer-token authenticator.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::audit::Actor;
use crate::authz::{Permission, PermissionSet};
use crate::error::ApiError;
use crate::secrets;
use crate::state::AppState;
use crate::store::{Membership, TokenInfo, User, Workspace};

/// A JSON body whose rejections use the API's error shape: 400 for broken
/// JSON, 422 for a well-formed body with wrong or unknown fields, 415 for a
/// missing JSON content type, 413 for an oversized body.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::JsonRejection;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Validation {
                field: None,
                message: format!(
                    "invalid request body: {}",
                    e.body_text().trim_start_matches(
                        "Failed to deserialize the JSON body into the target type: "
                    )
                ),
            }),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::bad_request(
                "invalid_json",
                format!(
                    "the request body is not valid JSON: {}",
                    e.body_text()
                        .trim_start_matches("Failed to parse the request body as JSON: ")
                ),
            )),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType(
                "send the request body as JSON with `Content-Type: application/json`".into(),
            )),
            Err(JsonRejection::BytesRejection(e)) => {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    Err(ApiError::PayloadTooLarge(
                        "the request body is too large".into(),
                    ))
                } else {
                    Err(ApiError::bad_request("bad_request", e.body_text()))
                }
            }
            Err(other) => Err(ApiError::bad_request("bad_request", other.body_text())),
        }
    }
}

/// The authenticated caller: the token presented and its holder.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The holder.
    pub user: User,
    /// The token used for this request.
    pub token: TokenInfo,
}

/// What the caller may do in one workspace.
#[derive(Debug, Clone)]
pub struct Access {
    /// The workspace.
    pub workspace: Workspace,
    /// The caller's membership (None for a platform admin who is not a member).
    pub membership: Option<Membership>,
    /// The caller's permissions there.
    pub permissions: PermissionSet,
}

impl Access {
    /// Fails with 403 naming `p` unless the caller holds it.
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.permissions.contains(p) {
            return Ok(());
        }
        let held = match &self.membership {
            Some(Membership {
                custom_role: Some(c),
                ..
            }) => format!("custom role `{}`", c.name),
            Some(m) => format!("role `{}`", m.role),
            None => "no role".to_string(),
        };
        Err(ApiError::forbidden(
            p.name(),
            format!(
                "missing permission `{p}` in workspace `{}` (you hold {held})",
                self.workspace.slug
            ),
        ))
    }
}

impl Principal {
    /// The audit actor for changes this caller makes.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: Some(self.user.id),
            token_id: Some(self.token.id),
            label: self.user.email.clone(),
        }
    }

    /// Fails with 403 unless the caller is a platform admin.
    pub fn require_platform_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.user.platform_admin {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "platform_admin",
                format!(
                    "only a platform admin may {what}; {} is not a platform admin",
                    self.user.email
                ),
            ))
        }
    }

    /// Resolves the caller's access to workspace `slug` and checks `p`.
    /// A non-member gets 403 and learns nothing of the workspace's content.
    pub async fn workspace(
        &self,
        state: &AppState,
        slug: &str,
        p: Permission,
    ) -> Result<Access, ApiError> {
        let access = self.access(state, slug).await?;
        access.require(p)?;
        Ok(access)
    }

    /// Resolves the caller's access to workspace `slug` without checking a permission.
    ///
    /// Only a platform admin learns that a workspace does not exist (404);
    /// anyone else gets the same 403 for a workspace that does not exist as
    /// for one they are not a member of, so slugs cannot be probed.
    pub async fn access(&self, state: &AppState, slug: &str) -> Result<Access, ApiError> {
        let not_a_member = || {
            ApiError::forbidden(
                "workspace.read",
                format!("{} is not a member of workspace `{slug}`", self.user.email),
            )
        };
        let Some(workspace) = state.store.workspace_by_slug(slug).await? else {
            return Err(if self.user.platform_admin {
                ApiError::NotFound(format!("no workspace `{slug}`"))
            } else {
                not_a_member()
            });
        };
        let membership = state.store.membership(workspace.id, self.user.id).await?;
        let permissions = if self.user.platform_admin {
            PermissionSet::all()
        } else {
            match &membership {
                Some(m) => m.permissions(),
                None => return Err(not_a_member()),
            }
        };
        Ok(Access {
            workspace,
            membership,
            permissions,
        })
    }
}

fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Unauthorized {
        code,
        message: message.into(),
    }
}

/// Reads `Authorization: Bearer vgl_…` and resolves it, or fails with 401.
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
        unauthorized(
            "unauthenticated",
            "missing `Authorization: Bearer <token>` header",
        )
    })?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| {
            unauthorized(
                "unauthenticated",
                "the Authorization header must be `Bearer <token>`",
            )
        })?;
    if !secrets::well_formed(token, secrets::API_TOKEN_PREFIX) {
        return Err(unauthorized("token_invalid", "the API token is not valid"));
    }
    let found = state
        .store
        .lookup_token(&secrets::hash(token))
        .await?
        .ok_or_else(|| unauthorized("token_invalid", "the API token is not valid"))?;
    match found.token.status.as_str() {
        "revoked" => {
            return Err(unauthorized(
                "token_revoked",
                format!("the API token `{}` was revoked", found.token.prefix),
            ))
        }
        "expired" => {
            return Err(unauthorized(
                "token_expired",
                format!(
                    "the API token `{}` expired at {}",
                    found.token.prefix,
                    found.token.expires_at.as_deref().unwrap_or("?")
                ),
            ))
        }
        _ => {}
    }
    state.store.touch_token(&found.token).await?;
    Ok(Principal {
        user: found.user,
        token: found.token,
    })
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(parts, state).await
    }
}

/// The caller if a valid token was presented, None if no Authorization
/// header was sent at all. A presented but bad token is still a 401.
pub struct MaybePrincipal(pub Option<Principal>);

impl FromRequestParts<AppState> for MaybePrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if parts.headers.get(AUTHORIZATION).is_none() {
            return Ok(Self(None));
        }
        authenticate(parts, state).await.map(|p| Self(Some(p)))
    }
}

/// A path parameter whose rejection uses the API's error shape (400).
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(e) => Err(ApiError::bad_request(
                "bad_request",
                format!("invalid path parameter: {}", e.body_text()),
            )),
        }
    }
}

/// A query string whose rejection uses the API's error shape (400).
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(e) => Err(ApiError::bad_request(
                "bad_request",
                format!("invalid query string: {}", e.body_text()),
            )),
        }
    }
}
