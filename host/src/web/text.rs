//! Text people wrote, made ready for a page, and the server's own
//! messages put in words people read.

/// A message of the server as a page shows it: no backticks, and a quoted
/// `snake_case` name in words ("expires in seconds"), with a capital letter
/// when the message starts with it. What someone typed is left as typed.
/// The API keeps its messages as they are.
pub fn plain(message: &str) -> String {
    // A quoted `snake_case` word is a field's or setting's name.
    let is_name = |part: &str| {
        part.contains('_')
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !part.starts_with('_')
            && !part.ends_with('_')
    };
    let mut out = String::with_capacity(message.len());
    let mut starts_with_name = false;
    for (n, part) in message.split('`').enumerate() {
        if n % 2 == 1 && is_name(part) {
            starts_with_name |= out.is_empty();
            out.push_str(&part.replace('_', " "));
        } else {
            out.push_str(part);
        }
    }
    if starts_with_name {
        out[..1].make_ascii_uppercase();
    }
    out
}

/// `text` as HTML: escaped, with each `http://` or `https://` address made
/// a link (opening in the same tab, with no referrer and `nofollow`), and
/// line breaks kept by the page's CSS. Nothing else becomes markup.
pub fn linked(text: &str) -> String {
    let mut html = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(start) = next_address(rest) {
        html.push_str(&escape(&rest[..start]));
        let address = &rest[start..];
        let end = address
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
            .unwrap_or(address.len());
        // A sentence's closing punctuation is not part of the address.
        let end = address[..end]
            .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '\''])
            .len();
        let url = &address[..end];
        if url.len() <= "https://".len() {
            html.push_str(&escape(url));
        } else {
            let url = escape(url);
            html.push_str(&format!(
                "<a href=\"{url}\" rel=\"nofollow noreferrer\">{url}</a>"
            ));
        }
        rest = &address[end..];
    }
    html.push_str(&escape(rest));
    html
}

/// Where the next web address in `text` starts.
fn next_address(text: &str) -> Option<usize> {
    let http = text.find("http://");
    let https = text.find("https://");
    match (http, https) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{linked, plain};

    #[test]
    fn messages_read_as_words() {
        assert_eq!(
            plain("`expires_in_seconds` must be positive"),
            "Expires in seconds must be positive"
        );
        assert_eq!(
            plain("`ops team` is not a valid slug: use `_`, `-` and `.`"),
            "ops team is not a valid slug: use _, - and ."
        );
        assert_eq!(
            plain("bob@example.com is already a member of `ops`"),
            "bob@example.com is already a member of ops"
        );
        assert_eq!(
            plain("field `window`: a holiday"),
            "field window: a holiday"
        );
        assert_eq!(
            plain("`seven` is not the number of an item."),
            "seven is not the number of an item."
        );
        assert_eq!(plain(""), "");
    }

    #[test]
    fn addresses_become_links_and_nothing_else_becomes_markup() {
        assert_eq!(
            linked("See https://status.example.com/x?a=1&b=2."),
            "See <a href=\"https://status.example.com/x?a=1&amp;b=2\" rel=\"nofollow noreferrer\">\
             https://status.example.com/x?a=1&amp;b=2</a>."
        );
        assert_eq!(
            linked("<script>alert(1)</script> & \"quotes\""),
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"
        );
        assert_eq!(
            linked("javascript:alert(1) http:// (http://a.example)"),
            "javascript:alert(1) http:// (<a href=\"http://a.example\" rel=\"nofollow noreferrer\">\
             http://a.example</a>)"
        );
        assert_eq!(
            linked("x https://a.example/\"onmouseover=\"y"),
            "x <a href=\"https://a.example/\" rel=\"nofollow noreferrer\">https://a.example/</a>\
             &quot;onmouseover=&quot;y"
        );
    }
}
