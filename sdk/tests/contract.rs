//! The plugin contract end to end, in process: a plugin registering one of
//! each kind, driven through the ABI exactly as the server drives it.

use std::time::Duration;

use vigilo_sdk::harness::{MockHost, PluginTestHarness};
use vigilo_sdk::loader::{CallError, NoHost, PluginCalls, PluginErrorKind, Registration};
use vigilo_sdk::wire::{self, ValidateRequest};
use vigilo_sdk::{
    json, Adapter, Event, FieldContext, FieldType, Host, Plugin, PluginKind, PluginRegistry,
    Schedule, Task, TaskContext, Value, Widget, WidgetContext,
};

struct Everything;

impl Plugin for Everything {
    fn name(&self) -> &str {
        "everything"
    }
    fn kind(&self) -> PluginKind {
        PluginKind::IntegrationAdapter
    }
    fn version(&self) -> &str {
        "1.2.3"
    }
    fn compatible_with(&self) -> &str {
        ">=0.1, <0.2"
    }
    fn description(&self) -> &str {
        "One of each kind."
    }
    fn register(&self, registry: &mut PluginRegistry) {
        registry
            .register_field_type(Shouty)
            .register_widget(Echo)
            .register_adapter(Webhook)
            .register_task(Digest);
    }
}

vigilo_sdk::export_plugin!(Everything);

/// Upper-cases text; panics on "boom" (to prove panics are contained).
struct Shouty;

impl FieldType for Shouty {
    fn name(&self) -> &str {
        "shouty"
    }
    fn label(&self) -> &str {
        "Shouty text"
    }
    fn validate(&self, value: &Value, ctx: &FieldContext) -> Result<Value, String> {
        let text = value.as_str().ok_or("text, please")?;
        if text == "boom" {
            panic!("shouty exploded on {text:?}");
        }
        let suffix = ctx.setting("suffix").and_then(Value::as_str).unwrap_or("");
        Ok(Value::String(format!("{}{suffix}", text.to_uppercase())))
    }
}

/// Returns what the host answers for `config.method`.
struct Echo;

impl Widget for Echo {
    fn name(&self) -> &str {
        "echo"
    }
    fn label(&self) -> &str {
        "Echo"
    }
    fn render(&self, ctx: &WidgetContext, host: &dyn Host) -> Result<Value, String> {
        let method = ctx.config["method"].as_str().unwrap_or("echo");
        let answer = host.call(method, &json!({"workspace": ctx.workspace}))?;
        Ok(json!({"answer": answer}))
    }
}

struct Webhook;

impl Adapter for Webhook {
    fn name(&self) -> &str {
        "webhook"
    }
    fn label(&self) -> &str {
        "Webhook"
    }
    fn config_schema(&self) -> Value {
        json!({
            "type": "object",
            "required": ["url"],
            "properties": {"url": {"type": "string"}, "retries": {"type": "integer"}}
        })
    }
    fn secret_fields(&self) -> Vec<String> {
        vec!["url".into()]
    }
    fn send(&self, config: &Value, event: &Event, _host: &dyn Host) -> Result<Value, String> {
        if event.event_type == "fail" {
            return Err("the remote answered 503".into());
        }
        Ok(json!({"posted_to": config["url"], "title": event.title}))
    }
}

struct Digest;

impl Task for Digest {
    fn name(&self) -> &str {
        "digest"
    }
    fn label(&self) -> &str {
        "Daily digest"
    }
    fn schedule(&self) -> Schedule {
        Schedule::Every(Duration::from_secs(3600))
    }
    fn run(&self, ctx: &TaskContext, host: &dyn Host) -> Result<Value, String> {
        let counts =
            host.work_items_count_by_status(ctx.config["workspace"].as_str().unwrap_or("ops"))?;
        Ok(
            json!({"at": ctx.now, "open_incidents": counts.incidents.get("open").copied().unwrap_or(0)}),
        )
    }
}

fn plugin() -> PluginTestHarness {
    PluginTestHarness::in_process(vigilo_plugin_module)
}

#[test]
fn manifest_json_has_the_documented_shape() {
    plugin().assert_valid_plugin();
    let text = (vigilo_plugin_module().manifest())();
    let manifest: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        manifest,
        json!({
            "name": "everything",
            "kind": "integration_adapter",
            "version": "1.2.3",
            "compatible_with": ">=0.1, <0.2",
            "sdk_abi_version": 1,
            "sdk_version": env!("CARGO_PKG_VERSION"),
            "panic_unwind": true,
            "description": "One of each kind.",
            "frontend": [],
            "frontend_api": vigilo_sdk::FRONTEND_API_VERSION
        })
    );
}

#[test]
fn registrations_json_has_the_documented_shape() {
    let text = match (vigilo_plugin_module().register())() {
        vigilo_sdk::__private::abi_stable::std_types::RResult::ROk(text) => text.into_string(),
        vigilo_sdk::__private::abi_stable::std_types::RResult::RErr(e) => panic!("{e}"),
    };
    let registrations: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        registrations,
        json!({"registrations": [
            {"kind": "field_type", "name": "shouty", "label": "Shouty text", "description": ""},
            {"kind": "dashboard_widget", "name": "echo", "label": "Echo", "description": "",
             "config_schema": {"type": "object", "properties": {}}},
            {"kind": "integration_adapter", "name": "webhook", "label": "Webhook", "description": "",
             "config_schema": {"type": "object", "required": ["url"],
                               "properties": {"url": {"type": "string"}, "retries": {"type": "integer"}}},
             "secret_fields": ["url"]},
            {"kind": "celery_task", "name": "digest", "label": "Daily digest", "description": "",
             "schedule": {"every_seconds": 3600}, "config_schema": {"type": "object", "properties": {}}}
        ]})
    );
    // And the typed view agrees.
    let typed = plugin().registrations();
    assert_eq!(typed.len(), 4);
    assert_eq!(typed[3].kind(), PluginKind::CeleryTask);
    assert!(matches!(
        &typed[3],
        Registration::CeleryTask { schedule: Schedule::Every(interval), .. } if interval.as_secs() == 3600
    ));
}

#[test]
fn field_type_validate() {
    let plugin = plugin();
    assert_eq!(
        plugin.validate("shouty", json!("hi"), json!({"suffix": "!"})),
        Ok(json!("HI!"))
    );
    assert_eq!(
        plugin.validate("shouty", json!(3), Value::Null),
        Err("text, please".into())
    );
    // The raw wire form.
    let out = plugin
        .call(
            wire::FIELD_TYPE_VALIDATE,
            &json!({"name": "shouty", "value": "x", "context": {"workspace": "ops", "settings": {}}}),
            &NoHost,
        )
        .unwrap();
    assert_eq!(out, json!({"value": "X"}));
    // An invalid value is BadInput, whose message is the user-facing reason.
    let error = plugin
        .handle()
        .validate_field(&ValidateRequest {
            name: "shouty".into(),
            value: json!(false),
            context: FieldContext::default(),
        })
        .unwrap_err();
    assert_eq!(
        error,
        CallError::Plugin {
            kind: PluginErrorKind::BadInput,
            message: "text, please".into()
        }
    );
}

#[test]
fn a_panic_in_a_plugin_method_is_a_panicked_error_not_an_abort() {
    let error = plugin()
        .call(
            wire::FIELD_TYPE_VALIDATE,
            &json!({"name": "shouty", "value": "boom"}),
            &NoHost,
        )
        .unwrap_err();
    assert_eq!(error.kind(), Some(PluginErrorKind::Panicked));
    let message = error.message();
    assert!(
        message.starts_with("shouty exploded on \"boom\" (at sdk/tests/contract.rs:"),
        "{message}"
    );
    // The plugin is still usable afterwards.
    assert_eq!(
        plugin().validate("shouty", json!("ok"), Value::Null),
        Ok(json!("OK"))
    );
}

#[test]
#[should_panic(expected = "did not return normally: plugin error (panicked): shouty exploded")]
fn the_harness_fails_a_test_whose_plugin_panics() {
    let _ = plugin().validate("shouty", json!("boom"), Value::Null);
}

#[test]
fn widget_render_reads_through_the_host() {
    let host = MockHost::new().respond("echo", json!({"ok": true}));
    let data = plugin().render("echo", "ops", json!({}), &host).unwrap();
    assert_eq!(data, json!({"answer": {"ok": true}}));
    assert_eq!(
        host.calls(),
        vec![("echo".to_owned(), json!({"workspace": "ops"}))]
    );

    // A method the host does not know is an error the widget can report.
    let error = plugin()
        .render("echo", "ops", json!({"method": "nope"}), &MockHost::new())
        .unwrap_err();
    assert_eq!(
        error,
        "MockHost: no answer configured for host method `nope`"
    );
}

#[test]
fn a_panic_in_the_host_callback_is_an_error_for_the_plugin() {
    let host = MockHost::new().respond_with("echo", |_| panic!("database on fire"));
    let error = plugin()
        .render("echo", "ops", json!({}), &host)
        .unwrap_err();
    assert_eq!(
        error,
        "host method `echo` failed inside the server: database on fire"
    );
}

#[test]
fn adapter_send_and_validate_config() {
    let plugin = plugin();
    let event = Event {
        event_type: "incident.opened".into(),
        workspace: "ops".into(),
        title: "DB down".into(),
        text: "Primary unreachable".into(),
        data: json!({"id": 7}),
    };
    let config = json!({"url": "https://hooks.example/1"});
    assert_eq!(
        plugin.send("webhook", config.clone(), &event),
        Ok(json!({"posted_to": "https://hooks.example/1", "title": "DB down"}))
    );
    let raw = plugin
        .call(
            wire::ADAPTER_SEND,
            &json!({"name": "webhook", "config": config, "event": {"type": "x", "workspace": "ops", "title": "t", "text": "", "data": {}}}),
            &NoHost,
        )
        .unwrap();
    assert_eq!(raw["delivered"], true);
    assert_eq!(raw["detail"]["title"], "t");

    let failing = Event {
        event_type: "fail".into(),
        ..event
    };
    assert_eq!(
        plugin.send("webhook", config.clone(), &failing),
        Err("the remote answered 503".into())
    );

    assert_eq!(
        plugin.validate_config("webhook", config.clone()),
        Ok(config)
    );
    assert_eq!(
        plugin.validate_config("webhook", json!({})),
        Err("missing required setting `url`".into())
    );
    assert_eq!(
        plugin.validate_config("webhook", json!({"url": "x", "retries": "3"})),
        Err("setting `retries` must be of type integer".into())
    );
    assert_eq!(
        plugin.validate_config("webhook", json!(["url"])),
        Err("the configuration must be a JSON object".into())
    );
}

#[test]
fn task_run() {
    let host = MockHost::new().respond(
        vigilo_sdk::WORK_ITEMS_COUNT_BY_STATUS,
        json!({"incidents": {"open": 3}}),
    );
    let summary = plugin()
        .run_task(
            "digest",
            json!({"workspace": "ops"}),
            "2026-12-24T07:00:00Z",
            &host,
        )
        .unwrap();
    assert_eq!(
        summary,
        json!({"at": "2026-12-24T07:00:00Z", "open_incidents": 3})
    );
}

#[test]
fn unknown_methods_names_and_malformed_input_are_distinguished() {
    let plugin = plugin();
    let error = plugin
        .call("widget.explode", &json!({}), &NoHost)
        .unwrap_err();
    assert_eq!(error.kind(), Some(PluginErrorKind::UnknownMethod));
    assert!(error.message().contains("widget.explode"));

    let error = plugin
        .call(
            wire::WIDGET_RENDER,
            &json!({"name": "nope", "workspace": "ops"}),
            &NoHost,
        )
        .unwrap_err();
    assert_eq!(error.kind(), Some(PluginErrorKind::BadInput));
    assert_eq!(
        error.message(),
        "plugin `everything` has no widget named `nope`"
    );

    let error = plugin
        .call(wire::TASK_RUN, &json!({"name": "digest"}), &NoHost)
        .unwrap_err();
    assert_eq!(error.kind(), Some(PluginErrorKind::BadInput));
    assert!(
        error.message().starts_with("invalid input for `task.run`"),
        "{error}"
    );
}

#[test]
fn a_newer_server_may_send_fields_this_plugin_does_not_know() {
    let out = plugin()
        .call(
            wire::FIELD_TYPE_VALIDATE,
            &json!({"name": "shouty", "value": "a", "context": {"workspace": "w", "settings": {}, "locale": "de"}, "trace_id": 9}),
            &NoHost,
        )
        .unwrap();
    assert_eq!(out, json!({"value": "A"}));
}

#[test]
fn manifest_compatibility_check() {
    let manifest = plugin().manifest();
    assert_eq!(manifest.check_compatible("0.1.7"), Ok(()));
    assert_eq!(
        manifest.check_compatible("0.2.0").unwrap_err().to_string(),
        "plugin requires Vigilo >=0.1, <0.2, but this server is 0.2.0"
    );
    let mut other_abi = manifest.clone();
    other_abi.sdk_abi_version = 2;
    assert!(other_abi
        .check_compatible("0.1.0")
        .unwrap_err()
        .to_string()
        .contains("plugin ABI version 2"));
    let mut bad = manifest;
    bad.compatible_with = "soon".into();
    assert!(bad.check_compatible("0.1.0").is_err());
}

#[test]
fn plugin_kind_wire_names() {
    for (kind, name) in [
        (PluginKind::FieldType, "field_type"),
        (PluginKind::DashboardWidget, "dashboard_widget"),
        (PluginKind::IntegrationAdapter, "integration_adapter"),
        (PluginKind::CeleryTask, "celery_task"),
    ] {
        assert_eq!(kind.as_str(), name);
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(name));
        assert_eq!(
            serde_json::from_value::<PluginKind>(json!(name)).unwrap(),
            kind
        );
        assert_eq!(PluginKind::from_wire(name), Some(kind));
    }
}

#[test]
fn schedule_wire_form() {
    let cron = Schedule::Cron("0 7 * * *".into());
    assert_eq!(
        serde_json::to_value(&cron).unwrap(),
        json!({"cron": "0 7 * * *"})
    );
    assert_eq!(
        serde_json::from_value::<Schedule>(json!({"cron": "0 7 * * *"})).unwrap(),
        cron
    );
    assert_eq!(
        serde_json::from_value::<Schedule>(json!({"every_seconds": 60})).unwrap(),
        Schedule::Every(Duration::from_secs(60))
    );
    assert!(serde_json::from_value::<Schedule>(json!({"every_seconds": 0})).is_err());
}

#[test]
fn registry_check_rejects_duplicates() {
    let mut registry = PluginRegistry::new();
    registry
        .register_field_type(Shouty)
        .register_field_type(Shouty);
    assert_eq!(
        registry.check(),
        Err("field type `shouty` is registered twice".into())
    );
}

#[test]
fn handles_can_be_shared_between_server_threads() {
    fn assert_send_sync<T: Send + Sync + Copy>() {}
    assert_send_sync::<vigilo_sdk::loader::PluginHandle>();
    assert_send_sync::<vigilo_sdk::abi::PluginModRef>();

    let handle = plugin().handle();
    let results: Vec<_> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|i| {
                scope.spawn(move || {
                    handle.validate_field(&ValidateRequest {
                        name: "shouty".into(),
                        value: json!(format!("t{i}")),
                        context: FieldContext::default(),
                    })
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(results[3], Ok(json!("T3")));
}
