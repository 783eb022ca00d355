//! What a page handler states in its signature instead of checking it in
//! its body: who is signed in ([`SignedIn`]), their access to the workspace
//! the address names, holding a permission ([`Member`]), and a posted form
//! whose CSRF token matched ([`MemberForm`], [`SignedForm`], and
//! [`SignedUpload`] for a form with a file).
//!
//! The checks run in the order they always did: the session (no session
//! sends the browser to sign in), the form's values (a wrong one is a 422
//! naming its field), the form's CSRF token (a forged form is refused as
//! forged, whoever sends it), then the workspace and the permission.

use std::collections::HashMap;
use std::marker::PhantomData;

use axum::extract::{FromRequest, FromRequestParts, Multipart, Path, RawForm, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::session::{check_csrf, SignedIn};
use super::{workspace_access, CsrfForm, PageError, Upload};
use crate::domain::authz::{Access, Permission};
use crate::domain::sessions::Current;
use crate::domain::DomainError;
use crate::state::AppState;

/// A permission a page needs, as a type: `Member<need::CertManage>`.
pub trait Need: Send + Sync + 'static {
    /// The permission.
    const PERMISSION: Permission;
}

/// The permissions pages need, one type each.
pub mod need {
    use super::{Need, Permission};

    macro_rules! needs {
        ($($name:ident),* $(,)?) => {
            $(
                #[doc = concat!("Needs `", stringify!($name), "`.")]
                pub struct $name;

                impl Need for $name {
                    const PERMISSION: Permission = Permission::$name;
                }
            )*
        };
    }

    needs!(
        AuditRead,
        CertManage,
        DashboardEdit,
        IntegrationManage,
        MemberInvite,
        MemberRead,
        MemberRemove,
        PlaybookEdit,
        RoleManage,
        WorkspaceExport,
        WorkspaceRead,
        WorkspaceSettings,
    );
}

/// The signed-in person and their access to the workspace the address
/// names (`{slug}`), holding `P`'s permission.
pub struct Member<P: Need> {
    /// Who is signed in.
    pub current: Current,
    /// Their access to the workspace.
    pub access: Access,
    need: PhantomData<P>,
}

impl<P: Need> FromRequestParts<AppState> for Member<P> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let SignedIn(current) = SignedIn::from_request_parts(parts, state).await?;
        let slug = slug(parts, state).await?;
        let access = workspace_access(state, &current, &slug, P::PERMISSION)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Member {
            current,
            access,
            need: PhantomData,
        })
    }
}

/// A form posted to a workspace's page: the signed-in person, the form
/// (read as [`super::Form`] reads it) whose CSRF token matched, and their
/// access to the workspace the address names, holding `P`'s permission.
/// Without a `T`, the form is a button that sends only its token.
pub struct MemberForm<P: Need, T = CsrfForm> {
    /// Who is signed in.
    pub current: Current,
    /// Their access to the workspace.
    pub access: Access,
    /// The form.
    pub form: T,
    need: PhantomData<P>,
}

impl<P: Need, T: DeserializeOwned + Send> FromRequest<AppState> for MemberForm<P, T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let SignedIn(current) = SignedIn::from_request_parts(&mut parts, state).await?;
        let slug = slug(&mut parts, state).await?;
        let form = checked_form(&current, Request::from_parts(parts, body), state).await?;
        let access = workspace_access(state, &current, &slug, P::PERMISSION)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(MemberForm {
            current,
            access,
            form,
            need: PhantomData,
        })
    }
}

/// A form the signed-in person posted outside a workspace (their profile,
/// their tokens, the administration), whose CSRF token matched.
pub struct SignedForm<T = CsrfForm> {
    /// Who is signed in.
    pub current: Current,
    /// The form.
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for SignedForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let SignedIn(current) = SignedIn::from_request_parts(&mut parts, state).await?;
        let form = checked_form(&current, Request::from_parts(parts, body), state).await?;
        Ok(SignedForm { current, form })
    }
}

/// A form with a file (`multipart/form-data`) that the signed-in person
/// posted, read whole ([`Upload::read`]), whose CSRF token matched.
pub struct SignedUpload {
    /// Who is signed in.
    pub current: Current,
    /// The form's fields and files.
    pub upload: Upload,
}

impl FromRequest<AppState> for SignedUpload {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let SignedIn(current) = SignedIn::from_request_parts(&mut parts, state).await?;
        let multipart = Multipart::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let upload = Upload::read(multipart)
            .await
            .map_err(IntoResponse::into_response)?;
        check_csrf(&current, upload.field("csrf")).map_err(IntoResponse::into_response)?;
        Ok(SignedUpload { current, upload })
    }
}

/// The form in `request`'s body, once its CSRF token matched `current`'s.
async fn checked_form<T: DeserializeOwned>(
    current: &Current,
    request: Request,
    state: &AppState,
) -> Result<T, Response> {
    let RawForm(bytes) = RawForm::from_request(request, state)
        .await
        .map_err(IntoResponse::into_response)?;
    let unreadable = |r: crate::input::Refusal| {
        PageError::Domain(DomainError::Invalid {
            field: r.field,
            message: r.message,
        })
        .into_response()
    };
    let form: T = crate::input::pairs(&bytes).map_err(unreadable)?;
    let token: CsrfForm = crate::input::pairs(&bytes).map_err(unreadable)?;
    check_csrf(current, &token.csrf).map_err(IntoResponse::into_response)?;
    Ok(form)
}

/// The workspace slug the address names.
async fn slug(parts: &mut Parts, state: &AppState) -> Result<String, Response> {
    let Path(mut params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(IntoResponse::into_response)?;
    params.remove("slug").ok_or_else(|| {
        PageError::Domain(DomainError::Internal(
            "a workspace page's address names no workspace".into(),
        ))
        .into_response()
    })
}
