//! Tests of `auth`.

use super::*;

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.insert(*k, HeaderValue::from_static(v));
    }
    map
}

#[test]
fn a_request_from_another_site_is_cross_origin() {
    assert!(is_cross_origin(&headers(&[("sec-fetch-site", "cross-site")])));
    assert!(!is_cross_origin(&headers(&[("sec-fetch-site", "same-origin")])));
    assert!(is_cross_origin(&headers(&[("origin", "https://evil.example"), ("host", "console:3000")])));
    assert!(!is_cross_origin(&headers(&[("origin", "http://console:3000"), ("host", "console:3000")])));
    assert!(!is_cross_origin(&headers(&[])), "scripts send neither");
}

#[test]
fn public_paths_are_judged_after_decoding_and_dot_segments() {
    assert!(is_public("/pkg/sti_rollout.js"));
    assert!(is_public("/login"));
    assert!(is_public("/health"), "Access::Anyone in the route table");
    assert!(takes_metrics_token("/metrics") && !takes_metrics_token("/audit.csv"));
    for private in
        ["/pkg/%2e%2e/env/dev", "/pkg/../audit", "/pkg/.%2E/keys", "/pkg/%ff", "/env/dev", "/loginx"]
    {
        assert!(!is_public(private), "{private}");
    }
}

#[test]
fn a_route_pattern_matches_its_paths_only() {
    use routes::route_matches;
    assert!(route_matches("/env/{env}", "/env/prod"));
    assert!(route_matches("/env/:env", "/env/prod"));
    assert!(!route_matches("/env/{env}", "/env/"));
    assert!(!route_matches("/env/{env}", "/env/prod/more"));
    assert!(route_matches("/", "/"));
    assert!(!route_matches("/", "/evil"));
}

#[test]
fn the_session_cookie_is_found_among_others() {
    let h = headers(&[("cookie", "a=1; __Host-sti_session=abc; sti_session=plain; b=2")]);
    assert_eq!(session_id(&h, COOKIE).as_deref(), Some("abc"));
    assert_eq!(session_id(&h, PLAIN_COOKIE).as_deref(), Some("plain"));
    assert_eq!(session_id(&headers(&[("cookie", "a=1")]), COOKIE), None);
}
