//! The frontend checks: what the web app needs of each element module a
//! plugin declares, read from the module's text before any browser sees it.
//!
//! The web app imports a registration's module, waits for its tag to be
//! defined, and runs it under a strict Content-Security-Policy (no inline
//! script or style, no other origins). A module that breaks one of these
//! rules fails in the browser only, often silently (a CSP violation in the
//! console, an unstyled tile). These rules find those mistakes in the text:
//!
//! | code | rule |
//! | --- | --- |
//! | `element_not_defined` | the module calls `customElements.define` with the declared tag |
//! | `wrong_tag` | it does not define another tag instead |
//! | `inline_style` | no `<style>` element, no `style=` attribute in markup it builds, no `setAttribute("style", …)` |
//! | `inline_handler` | no `onclick=`-style attribute in markup it builds, no `setAttribute("on…", …)` |
//! | `eval` | no `eval(…)`, no `new Function(…)` |
//! | `remote_url` | no `http://` or `https://` URL (XML namespace names such as `http://www.w3.org/2000/svg` are not fetched and are allowed) |
//! | `undecidable` | a rule the text cannot settle: `customElements.define` with a name that is neither a string literal nor a `const` holding one |
//! | `module_missing` | the declared module is not one of the plugin's frontend assets |
//!
//! The rules read the text with comments removed; they are not a
//! JavaScript engine. "Markup it builds" is a string literal holding a `<`.
//! A module that does something these rules cannot see (another module it
//! imports defines the tag) is told so, and can be written the plain way.

use std::fmt;

use super::Registration;

/// One rule a frontend module breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendProblem {
    /// The module (a frontend asset path).
    pub module: String,
    /// The rule's code (see the module docs).
    pub rule: &'static str,
    /// What is wrong and what to do, in a sentence.
    pub message: String,
}

impl fmt::Display for FrontendProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.module, self.rule, self.message)
    }
}

/// Checks the module of every element the `registrations` declare, reading
/// each module's text with `asset` (the plugin's frontend asset of that
/// path, if it has one). Returns every problem found, in order.
pub fn check_frontend(
    registrations: &[Registration],
    asset: impl Fn(&str) -> Option<Vec<u8>>,
) -> Vec<FrontendProblem> {
    let mut problems = Vec::new();
    for element in registrations.iter().filter_map(Registration::element) {
        match asset(&element.module) {
            Some(bytes) => problems.extend(check_module(
                &element.tag,
                &element.module,
                &String::from_utf8_lossy(&bytes),
            )),
            None => problems.push(FrontendProblem {
                module: element.module.clone(),
                rule: "module_missing",
                message: format!(
                    "element `{}` is defined by `{}`, which is not one of the plugin's frontend assets",
                    element.tag, element.module
                ),
            }),
        }
    }
    problems
}

/// Checks one element module's `text`: it must define `tag`, and may use
/// nothing the app's Content-Security-Policy blocks.
pub fn check_module(tag: &str, module: &str, text: &str) -> Vec<FrontendProblem> {
    let code = Code::read(text);
    let mut problems = Vec::new();
    let mut problem = |rule: &'static str, message: String| {
        problems.push(FrontendProblem {
            module: module.to_owned(),
            rule,
            message,
        })
    };
    if let Some((rule, message)) = defines(&code, tag) {
        problem(rule, message);
    }
    let lower = code.text.to_ascii_lowercase();
    if lower.contains("<style") {
        problem(
            "inline_style",
            "builds a <style> element, which the app's Content-Security-Policy blocks: \
             use a constructable stylesheet (adoptedStyleSheets) or link a CSS asset"
                .into(),
        );
    }
    if code.markup_attribute(|name| name == "style") || code.sets_attribute(|n| n == "style") {
        problem(
            "inline_style",
            "sets a style attribute in markup it builds, which the app's Content-Security-Policy \
             blocks: set element.style properties or use classes from a stylesheet"
                .into(),
        );
    }
    let handler = |name: &str| name.len() > 2 && name.starts_with("on");
    if code.markup_attribute(handler) || code.sets_attribute(handler) {
        problem(
            "inline_handler",
            "uses an inline event handler (an on…= attribute), which the app's \
             Content-Security-Policy blocks: use addEventListener"
                .into(),
        );
    }
    if code.calls("eval") || code.calls_new_function() {
        problem(
            "eval",
            "evaluates text as code (eval or new Function), which the app's \
             Content-Security-Policy blocks"
                .into(),
        );
    }
    if let Some(url) = code.remote_url() {
        problem(
            "remote_url",
            format!(
                "refers to `{url}`: the app loads nothing from other origins; ship the file \
                 as a frontend asset, or fetch data through the server"
            ),
        );
    }
    problems
}

/// Whether the module defines `tag`: None when it does, else the problem.
fn defines(code: &Code, tag: &str) -> Option<(&'static str, String)> {
    let mut literal_tags = Vec::new();
    let mut opaque = Vec::new();
    for argument in code.define_arguments() {
        match argument {
            Argument::Literal(name) => literal_tags.push(name),
            Argument::Name(name) => match code.constant(&name) {
                Some(value) => literal_tags.push(value),
                None => opaque.push(name),
            },
            Argument::Other(text) => opaque.push(text),
        }
    }
    if literal_tags.iter().any(|t| t == tag) {
        return None;
    }
    if let Some(other) = literal_tags.first() {
        return Some((
            "wrong_tag",
            format!(
                "defines <{other}>, but the plugin declares <{tag}> for it: the page would wait \
                 for <{tag}> in vain"
            ),
        ));
    }
    if let Some(what) = opaque.first() {
        return Some((
            "undecidable",
            format!(
                "calls customElements.define with `{what}`, whose value cannot be read from the \
                 text: define \"{tag}\" with a string literal or a const holding one"
            ),
        ));
    }
    Some((
        "element_not_defined",
        format!("never calls customElements.define(\"{tag}\", …): the page would wait for <{tag}> in vain"),
    ))
}

/// The first argument of a `customElements.define(` call.
enum Argument {
    Literal(String),
    Name(String),
    Other(String),
}

/// A module's text with its comments blanked out, and its string literals.
struct Code {
    /// The text, comments replaced by spaces.
    text: String,
    /// Every string literal's content (template literals included).
    strings: Vec<String>,
}

impl Code {
    fn read(source: &str) -> Code {
        let chars: Vec<char> = source.chars().collect();
        let mut text = String::with_capacity(source.len());
        let mut strings = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            if c == '/' && next == Some('/') {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            if c == '/' && next == Some('*') {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
                text.push(' ');
                continue;
            }
            if matches!(c, '"' | '\'' | '`') {
                let start = i;
                let mut literal = String::new();
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        literal.push(chars[i + 1]);
                        i += 2;
                        continue;
                    }
                    if c != '`' && chars[i] == '\n' {
                        break;
                    }
                    literal.push(chars[i]);
                    i += 1;
                }
                i = (i + 1).min(chars.len());
                text.extend(&chars[start..i]);
                strings.push(literal);
                continue;
            }
            text.push(c);
            i += 1;
        }
        Code { text, strings }
    }

    /// The first argument of every `customElements.define(` call.
    fn define_arguments(&self) -> Vec<Argument> {
        let mut found = Vec::new();
        for (at, _) in self.text.match_indices("customElements.define") {
            let rest = self.text[at + "customElements.define".len()..].trim_start();
            let Some(rest) = rest.strip_prefix('(') else {
                continue;
            };
            let rest = rest.trim_start();
            let argument = match rest.chars().next() {
                Some(q @ ('"' | '\'' | '`')) => {
                    let body = &rest[1..];
                    match body.find(q) {
                        Some(end) if !(q == '`' && body[..end].contains("${")) => {
                            Argument::Literal(body[..end].to_owned())
                        }
                        _ => Argument::Other(first_token(rest)),
                    }
                }
                _ => {
                    let name: String = rest.chars().take_while(|c| is_ident(*c)).collect();
                    let after = rest[name.len()..].trim_start();
                    if !name.is_empty() && (after.starts_with(',') || after.starts_with(')')) {
                        Argument::Name(name)
                    } else {
                        Argument::Other(first_token(rest))
                    }
                }
            };
            found.push(argument);
        }
        found
    }

    /// The string value of `const NAME = "…"`, when the module declares
    /// `NAME` once (a `let` or `var` may change, so its value is unknown).
    fn constant(&self, name: &str) -> Option<String> {
        let mut values = Vec::new();
        for keyword in ["const", "let", "var"] {
            for (at, _) in self.text.match_indices(keyword) {
                if at > 0 && self.text[..at].chars().next_back().is_some_and(is_ident) {
                    continue;
                }
                let rest = self.text[at + keyword.len()..].trim_start();
                let Some(rest) = rest.strip_prefix(name) else {
                    continue;
                };
                if rest.chars().next().is_some_and(is_ident) {
                    continue;
                }
                let Some(rest) = rest.trim_start().strip_prefix('=') else {
                    continue;
                };
                let rest = rest.trim_start();
                if keyword != "const" {
                    // May be assigned again: its value at the define is
                    // not in the text.
                    values.push(None);
                    continue;
                }
                match rest.chars().next() {
                    Some(q @ ('"' | '\'')) => match rest[1..].find(q) {
                        Some(end) => values.push(Some(rest[1..1 + end].to_owned())),
                        None => values.push(None),
                    },
                    _ => values.push(None),
                }
            }
        }
        match values.as_slice() {
            [Some(value)] => Some(value.clone()),
            _ => None,
        }
    }

    /// Whether a string literal holding markup (a `<`) has an attribute
    /// `name=` that `matches`.
    fn markup_attribute(&self, matches: impl Fn(&str) -> bool) -> bool {
        self.strings
            .iter()
            .filter(|s| s.contains('<'))
            .any(|s| attributes(s).any(|name| matches(&name)))
    }

    /// Whether the module calls `setAttribute` with a literal attribute name
    /// that `matches`.
    fn sets_attribute(&self, matches: impl Fn(&str) -> bool) -> bool {
        self.text.match_indices("setAttribute").any(|(at, _)| {
            let rest = self.text[at + "setAttribute".len()..].trim_start();
            let Some(rest) = rest.strip_prefix('(') else {
                return false;
            };
            let rest = rest.trim_start();
            match rest.chars().next() {
                Some(q @ ('"' | '\'' | '`')) => rest[1..]
                    .find(q)
                    .is_some_and(|end| matches(&rest[1..1 + end].to_ascii_lowercase())),
                _ => false,
            }
        })
    }

    /// Whether the code (outside string literals) calls the function `name`.
    fn calls(&self, name: &str) -> bool {
        self.code_only().match_indices(name).any(|(at, _)| {
            let code = self.code_only();
            let before = code[..at].chars().next_back();
            let after = code[at + name.len()..].trim_start();
            !before.is_some_and(is_ident) && after.starts_with('(')
        })
    }

    fn calls_new_function(&self) -> bool {
        let code = self.code_only();
        code.match_indices("new").any(|(at, _)| {
            let before = code[..at].chars().next_back();
            let rest = &code[at + 3..];
            let trimmed = rest.trim_start();
            !before.is_some_and(is_ident)
                && trimmed.len() < rest.len()
                && trimmed
                    .strip_prefix("Function")
                    .is_some_and(|r| r.trim_start().starts_with('('))
        })
    }

    /// The text with every string literal's content blanked.
    fn code_only(&self) -> String {
        let mut out = String::with_capacity(self.text.len());
        let mut quote: Option<char> = None;
        let mut escaped = false;
        for c in self.text.chars() {
            match quote {
                Some(q) => {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == q {
                        quote = None;
                        out.push(c);
                        continue;
                    }
                    out.push(' ');
                }
                None => {
                    if matches!(c, '"' | '\'' | '`') {
                        quote = Some(c);
                    }
                    out.push(c);
                }
            }
        }
        out
    }

    /// The first `http://` or `https://` URL in the text that is not an XML
    /// namespace name.
    fn remote_url(&self) -> Option<String> {
        let lower = self.text.to_ascii_lowercase();
        for scheme in ["https://", "http://"] {
            for (at, _) in lower.match_indices(scheme) {
                let url: String = self.text[at..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | '`' | ')'))
                    .collect();
                if !NAMESPACES.contains(&url.as_str()) {
                    return Some(url);
                }
            }
        }
        None
    }
}

/// XML namespace names: identifiers that look like URLs and are never
/// fetched.
const NAMESPACES: [&str; 4] = [
    "http://www.w3.org/2000/svg",
    "http://www.w3.org/1999/xhtml",
    "http://www.w3.org/1999/xlink",
    "http://www.w3.org/1998/Math/MathML",
];

/// The attribute names (lower-cased) written as `name=` after whitespace in
/// `markup`.
fn attributes(markup: &str) -> impl Iterator<Item = String> + '_ {
    markup.match_indices('=').filter_map(|(at, _)| {
        let before = markup[..at].trim_end();
        let name: String = before
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let preceded = before[..before.len() - name.len()]
            .chars()
            .next_back()
            .is_some_and(char::is_whitespace);
        (!name.is_empty() && preceded).then(|| name.to_ascii_lowercase())
    })
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

fn first_token(text: &str) -> String {
    text.chars()
        .take_while(|c| !matches!(c, ',' | ')' | '\n'))
        .take(60)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<&'static str> {
        check_module("acme-tile", "tile.js", text)
            .into_iter()
            .map(|p| p.rule)
            .collect()
    }

    const GOOD: &str = "// Draws <acme-tile>; no inline <style> here, see https://example.com\n\
        const TAG = \"acme-tile\";\n\
        class Tile extends HTMLElement { connectedCallback() {\n\
          const svg = document.createElementNS(\"http://www.w3.org/2000/svg\", \"svg\");\n\
          this.el.style.color = 'red'; this.onclick = () => {};\n\
          this.innerHTML = `<p class=\"x\">${this.title}</p>`; } }\n\
        if (!customElements.get(TAG)) customElements.define(TAG, Tile);\n";

    #[test]
    fn a_plain_module_passes() {
        assert_eq!(rules(GOOD), Vec::<&str>::new());
        assert_eq!(
            rules("customElements.define('acme-tile', class extends HTMLElement {});"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn each_rule_is_named() {
        let define = "customElements.define(\"acme-tile\", T);\n";
        assert_eq!(
            rules(&format!("{define}root.innerHTML = '<style>p{{}}</style>';")),
            ["inline_style"]
        );
        assert_eq!(
            rules(&format!("{define}x.innerHTML = `<p style=\"color:red\">`;")),
            ["inline_style"]
        );
        assert_eq!(
            rules(&format!("{define}x.setAttribute('style', 'color:red');")),
            ["inline_style"]
        );
        assert_eq!(
            rules(&format!(
                "{define}x.innerHTML = '<button onclick=\"go()\">';"
            )),
            ["inline_handler"]
        );
        assert_eq!(rules(&format!("{define}eval(text);")), ["eval"]);
        assert_eq!(rules(&format!("{define}new Function('a', s);")), ["eval"]);
        assert_eq!(
            rules(&format!("{define}fetch(\"https://cdn.example.com/x.js\");")),
            ["remote_url"]
        );
        assert_eq!(
            rules("customElements.define('acme-other', T);"),
            ["wrong_tag"]
        );
        assert_eq!(rules("customElements.define(name(), T);"), ["undecidable"]);
        assert_eq!(
            rules("let TAG = 'a'; TAG = 'acme-tile'; customElements.define(TAG, T);"),
            ["undecidable"]
        );
        assert_eq!(rules("export class T {}"), ["element_not_defined"]);
    }

    #[test]
    fn missing_modules_are_named() {
        let registrations: Vec<Registration> = serde_json::from_value(serde_json::json!([
            {"kind": "dashboard_widget", "name": "w", "label": "W",
             "element": {"tag": "acme-tile", "module": "gone.js"}}
        ]))
        .unwrap();
        let problems = check_frontend(&registrations, |_| None);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].rule, "module_missing");
    }
}
