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
    // Every route the router serves is documented: read from the router's source, so that a new route
    // without its OpenAPI entry fails here.
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    let routes: Vec<&str> = source.split(".route(\"").skip(1).filter_map(|rest| rest.split('"').next()).collect();
    assert!(routes.len() > 30, "{routes:?}");
    for path in routes {
        assert!(r.body["paths"].get(path).is_some(), "{path} is served but not documented");
    }
    assert_eq!(r.body["paths"]["/number-recycling/v0.2/check"]["post"]["operationId"], "checkNumberRecycling");
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
