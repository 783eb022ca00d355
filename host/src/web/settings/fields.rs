//! `/w/{slug}/settings/fields`: the workspace's custom fields, with plugin
//! field types in the type picker; adding and removing them.

use crate::web::extract::{need, Member, MemberForm};
use crate::web::urls::Workspace;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;

use crate::domain::authz::Access;
use crate::domain::fields::{self, FieldDefinition};
use crate::domain::sessions::Current;
use crate::domain::DomainError;
use crate::model::field_types::{Builtin, FieldType};
use crate::model::workflow::Kind;
use crate::state::AppState;
use crate::web::items::humanise;
use crate::web::{render_status, see_other, Done, Frame, PageError};

/// A field in the list.
pub struct FieldRow {
    key: String,
    label: String,
    type_label: String,
    applies_to: String,
    required: bool,
    warning: Option<String>,
}

/// A type in the picker.
pub struct TypeOption {
    name: String,
    label: String,
}

#[derive(Template)]
#[template(path = "settings/fields.html")]
struct FieldsPage {
    frame: Frame,
    slug: String,
    rows: Vec<FieldRow>,
    /// The most fields a workspace may have.
    max: usize,
    types: Vec<TypeOption>,
    form: FieldForm,
    field: String,
    error: Option<String>,
}

impl FieldsPage {
    fn applies(&self, kind: &str) -> bool {
        self.form.applies_to.iter().any(|k| k == kind)
    }

    fn error_for(&self, field: &str) -> Option<&String> {
        (self.field == field).then_some(()).and(self.error.as_ref())
    }
}

/// The add-field form.
#[derive(Default, Clone)]
pub struct FieldForm {
    key: String,
    label: String,
    field_type: String,
    applies_to: Vec<String>,
    required: bool,
    options: String,
}

async fn fields_page(
    state: &AppState,
    current: &Current,
    access: &Access,
    form: FieldForm,
    refusal: Option<DomainError>,
    done: Option<String>,
) -> Result<Response, PageError> {
    let types = fields::field_types(state);
    let rows = fields::list(state, access)
        .await?
        .into_iter()
        .map(|f| {
            let known = types.iter().find(|t| t.name == f.field_type.name());
            FieldRow {
                type_label: match known {
                    Some(t) => match &t.plugin {
                        Some(p) => format!("{} ({})", t.label, p.label()),
                        None => t.label.clone(),
                    },
                    None => f.field_type.to_string(),
                },
                warning: known.is_none().then(|| {
                    format!(
                        "No loaded plugin provides the type `{}`: values of this field cannot be checked or saved until an operator installs or enables it.",
                        f.field_type
                    )
                }),
                applies_to: f
                    .applies_to
                    .iter()
                    .map(|k| humanise(k.as_str()))
                    .collect::<Vec<_>>()
                    .join(", "),
                key: f.key,
                label: f.label,
                required: f.required,
            }
        })
        .collect();
    let crate::web::error::FormRefusal {
        status,
        field,
        message: error,
    } = crate::web::error::FormRefusal::of(refusal, "key")?;
    let frame = Frame::workspace(state, current, access, "settings", "Custom fields")
        .await?
        .with_notice(done);
    let page = FieldsPage {
        frame,
        slug: access.workspace.slug.clone(),
        rows,
        max: fields::MAX_FIELDS,
        types: types
            .into_iter()
            .map(|t| TypeOption {
                label: match &t.plugin {
                    Some(p) => format!("{} — from {}", t.label, p.label()),
                    None => t.label,
                },
                name: t.name,
            })
            .collect(),
        form,
        field,
        error,
    };
    Ok(render_status(status, &page))
}

/// `GET /w/{slug}/settings/fields`.
pub async fn fields(
    State(state): State<AppState>,
    Member {
        current, access, ..
    }: Member<need::WorkspaceSettings>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let form = FieldForm {
        applies_to: vec![Kind::Change.to_string()],
        field_type: Builtin::Text.to_string(),
        ..FieldForm::default()
    };
    let done = done.notice(&[
        ("added", "The field was added."),
        ("removed", "The field was removed."),
    ]);
    fields_page(&state, &current, &access, form, None, done).await
}

/// `POST /w/{slug}/settings/fields`.
pub async fn add_field(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    MemberForm {
        current,
        access,
        form: pairs,
        ..
    }: MemberForm<need::WorkspaceSettings, Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let mut form = FieldForm::default();
    for (key, value) in pairs {
        match key.as_str() {
            "key" => form.key = value,
            "label" => form.label = value,
            "type" => form.field_type = value,
            "applies_to" => form.applies_to.push(value),
            "required" => form.required = value == "true",
            "options" => form.options = value,
            _ => {}
        }
    }
    let definition = FieldDefinition {
        key: form.key.trim().to_owned(),
        label: form.label.clone(),
        applies_to: form.applies_to.clone(),
        field_type: form.field_type.clone(),
        required: form.required,
        options: if FieldType::named(&form.field_type).is(Builtin::Select) {
            form.options
                .split([',', '\n'])
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect()
        } else {
            Vec::new()
        },
    };
    match fields::create(&state, &access, &definition).await {
        Ok(_) => Ok(see_other(&Workspace(&slug).fields().done("added"))),
        Err(e) => fields_page(&state, &current, &access, form, Some(e), None).await,
    }
}

/// `POST /w/{slug}/settings/fields/{key}/delete`.
pub async fn delete_field(
    State(state): State<AppState>,
    Path((slug, key)): Path<(String, String)>,
    MemberForm { access, .. }: MemberForm<need::WorkspaceSettings>,
) -> Result<Response, PageError> {
    fields::delete(&state, &access, &key).await?;
    Ok(see_other(&Workspace(&slug).fields().done("removed")))
}
