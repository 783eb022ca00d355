//! The invite page never tells whether an address has an account.

use super::*;

on_both_databases!(invites_do_not_tell_whether_an_address_has_an_account);

/// The invite page, seen by anyone holding the link (the inviter too),
/// with what varies between two invites (the address, the token, the
/// form's token) taken out.
fn invite_page_text(page: &str, email: &str, token: &str) -> String {
    let page = page.replace(email, "EMAIL").replace(token, "TOKEN");
    match page.split_once("name=\"form_token\" value=\"") {
        Some((head, rest)) => {
            let tail = rest.split_once('"').map_or("", |(_, t)| t);
            format!("{head}FORM_TOKEN{tail}")
        }
        None => page,
    }
}

fn anonymous_page(url: &str) -> (u16, String) {
    match ureq::get(url).call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

/// An inviter learns nothing of whether an address has an account
/// elsewhere: the invite page, the answers to the inviter, and accepting
/// with the inviter's own token read the same for an address that has an
/// account only in another workspace and for one that has none.
fn invites_do_not_tell_whether_an_address_has_an_account(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "mine");
    create_workspace(&admin, "theirs");
    let elsewhere_token = join(&server, "theirs", "known@example.com", "viewer", false);
    let owner_token = join(&server, "mine", "owner@mine.com", "owner", false);
    let owner = server.api(&owner_token);
    let known = owner.create(
        "/api/v1/workspaces/mine/invites",
        json!({"email": "known@example.com", "role": "viewer"}),
    );
    let fresh = owner.create(
        "/api/v1/workspaces/mine/invites",
        json!({"email": "fresh@example.com", "role": "viewer"}),
    );
    // The answers to the inviter have the same shape and say nothing more.
    let keys = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&known), keys(&fresh));
    assert_eq!(known["status"], fresh["status"]);
    let token = |v: &Value| v["accept_token"].as_str().unwrap().to_owned();
    let (known_token, fresh_token) = (token(&known), token(&fresh));

    // The page behind the link reads the same, word for word.
    let page = |token: &str, email: &str| {
        let (status, page) = anonymous_page(&format!("{}/invites/{token}", server.url));
        assert_eq!(status, 200);
        assert!(!page.contains("already has"), "{page}");
        invite_page_text(&page, email, token)
    };
    assert_eq!(
        page(&known_token, "known@example.com"),
        page(&fresh_token, "fresh@example.com")
    );
    // Signed in, the inviter sees the same page for both, too.
    let inviter = crate::admin_web_session(&server);
    let signed_in_page = |token: &str, email: &str| {
        let (status, page) = inviter.page(&format!("/invites/{token}"));
        assert_eq!(status, 200);
        assert!(page.contains("You are signed in as admin@example.com"));
        invite_page_text(&page, email, token)
    };
    assert_eq!(
        signed_in_page(&known_token, "known@example.com"),
        signed_in_page(&fresh_token, "fresh@example.com")
    );
    // Accepting with the inviter's own token is refused alike, and
    // accepts nothing.
    for (token, email) in [
        (&known_token, "known@example.com"),
        (&fresh_token, "fresh@example.com"),
    ] {
        let r = owner.post(
            &format!("/api/v1/invites/{token}/accept"),
            json!({"name": "Probe"}),
        );
        assert_eq!(r.status, 403, "{}", r.text);
        assert_eq!(
            r.json["error"]["message"].as_str().unwrap().replace(email, "EMAIL"),
            "this invite is for EMAIL, and you are signed in as owner@mine.com: sign out (or use no token) to accept it"
        );
    }
    assert_eq!(
        server
            .db
            .number("SELECT COUNT(*) FROM users WHERE email = 'fresh@example.com'"),
        0
    );
    // The invitees themselves still join: the existing account with its
    // token, the new address with a name.
    let joined = server.api(&elsewhere_token).post(
        &format!("/api/v1/invites/{known_token}/accept"),
        json!({"name": "Known"}),
    );
    assert_eq!(expect(&joined, 201)["workspace"], "mine");
    let joined = server.anonymous().post(
        &format!("/api/v1/invites/{fresh_token}/accept"),
        json!({"name": "Fresh"}),
    );
    assert!(expect(&joined, 201)["token"]["token"].is_string());
}
