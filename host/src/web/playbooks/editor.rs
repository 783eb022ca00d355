//! The playbook editor: a playbook is created and edited as JSON (the same
//! definition `vigilo playbook create` reads), and the server's checks
//! answer next to the editor naming the step and field (`steps[2].url`).

use crate::web::extract::{need, Member, MemberForm};
use crate::web::urls::Workspace;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;

use crate::domain::authz::Access;
use crate::domain::playbooks::{self, PlaybookDefinition};
use crate::domain::sessions::Current;
use crate::domain::DomainError;
use crate::state::AppState;
use crate::web::{render_status, see_other, Frame, PageError};

#[derive(Template)]
#[template(path = "playbooks/edit.html")]
struct EditPage {
    frame: Frame,
    slug: String,
    /// None when creating.
    id: Option<i64>,
    definition: String,
    error: Option<String>,
    error_field: String,
}

const EXAMPLE: &str = r#"{
  "name": "page-on-call",
  "description": "Tell the on-call channel and open a follow-up task.",
  "steps": [
    {"type": "notify", "integration": "ops-slack", "message": "Incident {{input.incident}}: {{input.summary}}"},
    {"type": "create_task", "title": "Write the post-mortem for incident {{input.incident}}"}
  ]
}"#;

async fn edit_with(
    state: &AppState,
    current: &Current,
    access: &Access,
    id: Option<i64>,
    definition: String,
    refusal: Option<DomainError>,
) -> Result<Response, PageError> {
    let crate::web::error::FormRefusal {
        status,
        field: error_field,
        message: error,
    } = crate::web::error::FormRefusal::of(refusal, "name")?;
    let title = if id.is_some() {
        "Edit playbook"
    } else {
        "New playbook"
    };
    let frame = Frame::workspace(state, current, access, "playbooks", title).await?;
    Ok(render_status(
        status,
        &EditPage {
            frame,
            slug: access.workspace.slug.clone(),
            id,
            definition,
            error,
            error_field,
        },
    ))
}

/// `GET /w/{slug}/playbooks/new`.
pub async fn new_page(
    State(state): State<AppState>,
    Member {
        current, access, ..
    }: Member<need::PlaybookEdit>,
) -> Result<Response, PageError> {
    edit_with(&state, &current, &access, None, EXAMPLE.to_owned(), None).await
}

/// `GET /w/{slug}/playbooks/{id}/edit`.
pub async fn edit_page(
    State(state): State<AppState>,
    Member {
        current, access, ..
    }: Member<need::PlaybookEdit>,
    Path((_slug, id)): Path<(String, i64)>,
) -> Result<Response, PageError> {
    let playbook = playbooks::get(&state, &access, &id.to_string()).await?;
    let definition = PlaybookDefinition::from_stored(playbook)?;
    let text = serde_json::to_string_pretty(&definition)
        .map_err(|e| DomainError::Internal(format!("cannot show a playbook: {e}")))?;
    edit_with(&state, &current, &access, Some(id), text, None).await
}

/// The editor's form.
#[derive(serde::Deserialize)]
pub struct EditorForm {
    #[serde(default)]
    definition: String,
}

/// Reads the editor's JSON; a syntax or shape error says where.
fn parse_definition(text: &str) -> Result<PlaybookDefinition, DomainError> {
    if let Err(crate::input::strict::Refused::Repeated(key)) =
        crate::input::strict::parse(text.as_bytes())
    {
        return Err(DomainError::invalid(
            "definition",
            format!("This JSON gives the key `{key}` twice; give it once."),
        ));
    }
    serde_json::from_str::<PlaybookDefinition>(text).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "This is not valid JSON"
            }
            _ => "This JSON is not a playbook definition",
        };
        let detail = e.to_string();
        let detail = detail
            .split(" at line ")
            .next()
            .unwrap_or(&detail)
            .to_owned();
        DomainError::invalid(
            "definition",
            format!(
                "{what} (line {}, column {}): {detail}",
                e.line(),
                e.column()
            ),
        )
    })
}

/// `POST /w/{slug}/playbooks`.
pub async fn create(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    MemberForm {
        current,
        access,
        form,
        ..
    }: MemberForm<need::PlaybookEdit, EditorForm>,
) -> Result<Response, PageError> {
    let created = match parse_definition(&form.definition) {
        Ok(definition) => playbooks::create(&state, &access, &definition).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(p) => Ok(see_other(&Workspace(&slug).playbook(p.id).done("created"))),
        Err(e) => edit_with(&state, &current, &access, None, form.definition, Some(e)).await,
    }
}

/// `POST /w/{slug}/playbooks/{id}/edit`.
pub async fn update(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, i64)>,
    MemberForm {
        current,
        access,
        form,
        ..
    }: MemberForm<need::PlaybookEdit, EditorForm>,
) -> Result<Response, PageError> {
    let saved = match parse_definition(&form.definition) {
        Ok(definition) => playbooks::replace(&state, &access, &id.to_string(), &definition).await,
        Err(e) => Err(e),
    };
    match saved {
        Ok(p) => Ok(see_other(&Workspace(&slug).playbook(p.id).done("saved"))),
        Err(e) => {
            edit_with(
                &state,
                &current,
                &access,
                Some(id),
                form.definition,
                Some(e),
            )
            .await
        }
    }
}
