//! Health, metrics, the OpenAPI document and its docs page.

use axum::body::Body;
use axum::http::Method;
use store::backend_tests;
use store::testing::TestDb;

use crate::TestApp;

backend_tests!(health_openapi_and_docs);

async fn health_openapi_and_docs(db: TestDb) {
    let app = TestApp::new(db);
    let r = app.request(Method::GET, "/healthz", None, &[], Body::empty()).await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("ok")));
    let r = app.request(Method::GET, "/openapi.json", None, &[], Body::empty()).await;
    assert_eq!(r.status, 200);
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3.1"));
    // Every route the router serves is documented, with its method: the router's own table, so that
    // a new route without its OpenAPI entry fails here.
    assert!(api::API_ROUTES.len() > 40);
    for (method, path) in api::API_ROUTES {
        assert!(r.body["paths"][path].get(method).is_some(), "{method} {path} is served but not documented");
    }
    assert_eq!(r.body["paths"]["/number-recycling/v0.2/check"]["post"]["operationId"], "checkNumberRecycling");
    // Every parameter is documented where the route reads it: a path parameter is a `{…}` of its path,
    // and a listing's `limit` is in the query (a client generated from the document sends it there).
    for (path, operations) in r.body["paths"].as_object().unwrap() {
        for (method, op) in operations.as_object().unwrap() {
            if op.get("security").is_some() {
                assert!(op["responses"].get("401").is_some(), "{method} {path} takes a key but does not say 401");
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                if p["in"] == "path" {
                    assert!(path.contains(&format!("{{{name}}}")), "{method} {path}: {name} documented in the path");
                }
            }
        }
    }
    let limit = &r.body["paths"]["/v1/bindings"]["get"]["parameters"];
    assert!(limit.as_array().unwrap().iter().any(|p| p["name"] == "limit" && p["in"] == "query"), "{limit}");
    // The docs page and its assets are served by numlink itself: it works offline.
    let page = app.request(Method::GET, "/docs/", None, &[], Body::empty()).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("swagger-ui-bundle.js") && !page.text.contains("https://"), "no external assets");
    let js = app.request(Method::GET, "/docs/swagger-ui-bundle.js", None, &[], Body::empty()).await;
    assert_eq!(js.status, 200);
    assert!(js.text.len() > 100_000);
    let r = app.request(Method::GET, "/nowhere", None, &[], Body::empty()).await;
    assert_eq!((r.status, r.body["code"].as_str()), (404, Some("NOT_FOUND")));
}
