//! Which backend this run is on. Without `MM_TEST_POSTGRES` the whole suite
//! runs on sled and this test's name and message say that the PostgreSQL half
//! was skipped; with it, a started server has migrated its database and
//! recorded the schema version.

mod common;

use std::process::Command;

/// One value from a query, through psql.
fn query_one(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .arg(url)
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{sql} on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn postgresql_half_runs_when_mm_test_postgres_is_set_else_skipped() {
    if common::postgres().is_none() {
        eprintln!(
            "PostgreSQL half skipped: set {}=<admin url> (bash tests/pg/cluster.sh start) or run .ci/run",
            common::backend::ENV
        );
        return;
    }
    let server = common::start().await;
    let url = server
        .database_url
        .clone()
        .expect("on PostgreSQL the server has a database");
    assert!(url.contains("/mm_"), "a fresh database per server: {url}");
    let alice = server.register("alice").await;
    assert_eq!(alice.client.whoami().await.unwrap().status(), 200);
    // refinery records every migration it applied.
    let version: i64 = query_one(&url, "SELECT max(version) FROM refinery_schema_history")
        .parse()
        .expect("a schema version");
    assert!(version >= 1, "schema version {version}");
    let users: i64 = query_one(
        &url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()",
    )
    .parse()
    .unwrap();
    assert!(users >= 1, "the server holds connections to its own database");
}

#[test]
fn a_database_name_replaces_the_one_in_the_admin_url() {
    use common::backend::with_database;
    assert_eq!(
        with_database("postgres://nobody@127.0.0.1:5432/postgres", "mm_1"),
        "postgres://nobody@127.0.0.1:5432/mm_1"
    );
    assert_eq!(
        with_database("postgres://u:p@h:1/postgres?sslmode=disable", "mm_2"),
        "postgres://u:p@h:1/mm_2?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h:1", "mm_3"), "postgres://h:1/mm_3");
}
