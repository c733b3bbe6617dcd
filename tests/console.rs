//! The web console, end to end: a real headless Chromium (Debian's `chromium`) opens
//! `/console/` on a real server and is driven as a user drives it (keys typed into the
//! editor, buttons clicked), while the test writes through the REST API. With
//! `EDDY_CONSOLE_SCREENSHOTS=<dir>` the tests also write the README's screenshots there.

#[path = "console/browser.rs"]
mod browser;
mod common;
#[path = "console/firefox.rs"]
mod firefox;

use std::path::PathBuf;
use std::time::Duration;

use browser::Browser;
use common::TestServer;
use serde_json::json;

fn screenshots() -> Option<PathBuf> {
    std::env::var_os("EDDY_CONSOLE_SCREENSHOTS").map(PathBuf::from)
}

/// Opens the console and waits until it has read the catalog.
fn open_console(server: &TestServer) -> Browser {
    let mut b = Browser::launch();
    b.goto(&format!("{}/console/", server.url));
    let built = b.eval("new Promise(r => setTimeout(() => r(!!document.getElementById('app')), 500))");
    assert_eq!(built, json!(true), "the server serves no console: it was built without web/dist. Run scripts/build-web.sh (make test does), then rebuild");
    b.wait_until("the console to read the catalog", "document.body.dataset.ready === 'true'");
    b
}

/// Replaces the editor's text as a user does (select all, type) and presses Ctrl-Enter.
fn run_in_editor(b: &mut Browser, sql: &str) {
    b.click(".cm-content");
    b.press("a", "KeyA", 65, true);
    b.type_text(sql);
    b.press("Enter", "Enter", 13, true);
}

/// The text of the newest result card.
const NEWEST_RESULT: &str = "(document.querySelector('.results article.result')?.innerText ?? '')";

#[tokio::test]
async fn console_creates_a_stream_and_shows_pushed_rows_live() {
    let server = TestServer::start();
    let mut b = open_console(&server);
    run_in_editor(
        &mut b,
        "CREATE STREAM clicks (user_id VARCHAR KEY, page VARCHAR, dwell INT)\n  WITH (kafka_topic='clicks', partitions=2, value_format='JSON');",
    );
    b.wait_until("the stream to be created", &format!("{NEWEST_RESULT}.includes('Stream created')"));
    b.wait_until(
        "the catalog to list the stream",
        "[...document.querySelectorAll('.catalog-stream button.item')].some(e => e.textContent.trim() === 'CLICKS')",
    );

    run_in_editor(&mut b, "SELECT user_id, page, dwell FROM clicks EMIT CHANGES;");
    b.wait_until("the live table's header", "[...document.querySelectorAll('.live-table th')].map(t => t.textContent).join(',') === 'USER_ID,PAGE,DWELL'");
    b.wait_until("the push query to run", "document.querySelector('.live-status').textContent.startsWith('running')");
    server.ksql_ok("INSERT INTO clicks (user_id, page, dwell) VALUES ('u1', 'pricing-page', 1200);").await;
    server.ksql_ok("INSERT INTO clicks (user_id, page, dwell) VALUES ('u2', 'home', 300);").await;
    b.wait_until(
        "the inserted rows in the live table",
        "(() => { const t = document.querySelector('.live-table tbody').innerText; return t.includes('pricing-page') && t.includes('u2'); })()",
    );
    assert_eq!(b.eval("document.querySelectorAll('.live-table tbody tr').length"), json!(2));
    b.screenshot(screenshots().as_deref(), "console-push-query.png");

    b.click(".live button.stop");
    b.wait_until("the push query to stop", "document.querySelector('.live-status').textContent.startsWith('stopped')");
    // A row written after the stop does not arrive.
    server.ksql_ok("INSERT INTO clicks (user_id, page, dwell) VALUES ('u3', 'late', 1);").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.eval("document.querySelectorAll('.live-table tbody tr').length"), json!(2));
}

#[tokio::test]
async fn console_marks_a_bad_statement_at_its_line_and_column() {
    let server = TestServer::start();
    let mut b = open_console(&server);
    // A syntax error on the third line: the two statements before it run.
    run_in_editor(&mut b, "SHOW STREAMS;\nSHOW TOPICS;\n  SELEC * FROM nowhere;");
    b.wait_until("the error to be marked", "!!document.querySelector('.cm-lintRange-error')");
    let marked = "(() => { const m = document.querySelector('.cm-lintRange-error'); const lines = [...document.querySelectorAll('.cm-content .cm-line')]; \
                  return [lines.indexOf(m.closest('.cm-line')) + 1, m.textContent]; })()";
    assert_eq!(b.eval(marked), json!([3, "SELEC"]));
    assert_eq!(b.eval("document.querySelectorAll('.results article.result').length"), json!(3));
    assert_eq!(b.eval("document.querySelectorAll('.results article.result.failed').length"), json!(1));
    let error = b.eval("document.querySelector('.results article.failed .error').textContent");
    assert!(error.as_str().is_some_and(|e| e.starts_with("Line 3, column 3: Syntax Error")), "{error}");

    // A name that does not exist, on the fourth line of a statement that starts on the second.
    server.ksql_ok("CREATE STREAM present (id VARCHAR KEY, n INT) WITH (kafka_topic='present', partitions=1, value_format='JSON');").await;
    run_in_editor(&mut b, "SHOW STREAMS;\nCREATE STREAM copy AS\n  SELECT *\n  FROM absent\n  EMIT CHANGES;");
    b.wait_until("the unknown source to be marked", "document.querySelector('.cm-lintRange-error')?.textContent === 'absent'");
    assert_eq!(b.eval(marked), json!([4, "absent"]));
    let error = b.eval("document.querySelector('.results article.failed .error').textContent");
    assert!(error.as_str().is_some_and(|e| e.starts_with("Line 4, column 8: ABSENT does not exist")), "{error}");
    b.screenshot(screenshots().as_deref(), "console-error.png");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_charts_show_a_rate_while_a_csas_runs() {
    let server = TestServer::start();
    server.ksql_ok("CREATE STREAM views (user_id VARCHAR KEY, page VARCHAR) WITH (kafka_topic='views', partitions=2, value_format='JSON');").await;
    server.ksql_ok("CREATE STREAM pricing_views AS SELECT * FROM views WHERE page = 'pricing';").await;
    let url = server.url.clone();
    let writer = tokio::spawn(async move {
        let client = reqwest::Client::new();
        for round in 0..600 {
            let records: Vec<_> = (0..50)
                .map(|i| {
                    let page = if i % 2 == 0 { "pricing" } else { "home" };
                    json!({"key": format!("u{}", i % 7), "value": {"PAGE": page}, "headers": [{"key": "round", "value": round.to_string()}]})
                })
                .collect();
            let _ = client.post(format!("{url}/topics/views/records")).json(&json!({"records": records})).send().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut b = open_console(&server);
    b.click("#tab-charts");
    b.wait_until(
        "a non-zero rate of records in for the CSAS",
        "(() => { const v = document.querySelector('.query-card[data-query^=\"CSAS_PRICING_VIEWS\"] .rate-in'); \
         return !!v && parseFloat(v.textContent.replace(/,/g, '')) > 0; })()",
    );
    b.wait_until(
        "a non-zero rate of records out for the CSAS",
        "parseFloat(document.querySelector('.query-card .rate-out').textContent.replace(/,/g, '')) > 0",
    );
    b.wait_until("bytes read per second", "!['–', '0 B'].includes(document.querySelector('.query-card .bytes-in').textContent)");
    b.wait_until("the topic's produce rate", "parseFloat(document.querySelector('.topic-card[data-topic=\"views\"] .produce-rate')?.textContent ?? '0') > 0");
    assert_eq!(b.eval("document.querySelector('.topic-card[data-topic=\"views\"] .partitions').textContent"), json!("2"));
    assert!(b.eval("document.querySelectorAll('.query-card canvas').length").as_u64().unwrap_or(0) >= 2, "the query's charts are drawn");
    // Let the lines grow a little for the picture.
    tokio::time::sleep(Duration::from_secs(6)).await;
    b.screenshot(screenshots().as_deref(), "console-charts.png");
    writer.abort();
}

#[tokio::test]
async fn console_catalog_draws_a_topology_and_terminates_and_drops_after_confirmation_by_mouse_and_keyboard() {
    let server = TestServer::start();
    server
        .ksql_ok("CREATE STREAM pageviews (user_id VARCHAR KEY, page VARCHAR, dwell INT) WITH (kafka_topic='pageviews', partitions=2, value_format='JSON');")
        .await;
    server.ksql_ok("CREATE TABLE per_page AS SELECT page, COUNT(*) AS views, AVG(dwell) AS avg_dwell FROM pageviews GROUP BY page;").await;
    server.ksql_ok("INSERT INTO pageviews (user_id, page, dwell) VALUES ('u1', 'home', 100);").await;
    server.wait_until("the count", async |s| s.rows("SELECT * FROM per_page WHERE page = 'home';").await.len() == 1).await;
    let mut b = open_console(&server);
    b.wait_until("the query in the catalog", "!!document.querySelector('.catalog-query button.item')");
    b.click(".catalog-query button.item");
    b.wait_until("the topology", "!!document.querySelector('.detail .topology')");
    let stages = b.eval("document.querySelector('.detail .topology').getAttribute('aria-label')");
    assert_eq!(stages, json!("Stages: SOURCE → GROUP BY → AGGREGATE → PROJECT → SINK"));
    b.screenshot(screenshots().as_deref(), "console-topology.png");

    // Feature lookup of the table the query writes.
    b.click("#tab-features");
    b.wait_until("the table in the lookup panel", "[...document.querySelectorAll('#feature-table option')].some(o => o.value === 'PER_PAGE')");
    b.eval("document.getElementById('feature-table').value = 'PER_PAGE'");
    b.click("#feature-keys");
    b.type_text("home\nnowhere");
    b.click(".features button.primary");
    b.wait_until("the looked-up rows", "document.querySelectorAll('.feature-results tbody tr').length === 2");
    let row = b.eval("[...document.querySelectorAll('.feature-results tbody tr')].map(r => r.innerText)");
    let rows: Vec<&str> = row.as_array().expect("rows").iter().filter_map(|r| r.as_str()).collect();
    assert!(rows[0].starts_with("home\thome\t1\t100"), "{rows:?}");
    assert!(rows[1].contains("missing"), "{rows:?}");

    // Terminate, from the catalog, asks first; cancelling keeps the query.
    b.click("#tab-catalog");
    b.click(".detail button.danger");
    b.wait_until("the confirmation", "!!document.querySelector('dialog.confirm[open]')");
    b.click("dialog.confirm button:not(.danger)");
    b.wait_until("the dialog to close", "!document.querySelector('dialog.confirm')");
    assert_eq!(server.ksql_ok("SHOW QUERIES;").await[0]["queries"].as_array().map(Vec::len), Some(1));
    b.click(".detail button.danger");
    b.wait_until("the confirmation", "!!document.querySelector('dialog.confirm[open]')");
    b.click("dialog.confirm button.danger");
    b.wait_until("the query to be terminated", "document.querySelector('.detail h2')?.textContent.startsWith('Terminated')");
    assert_eq!(server.ksql_ok("SHOW QUERIES;").await[0]["queries"].as_array().map(Vec::len), Some(0));
    b.wait_until("the catalog to drop the query", "document.querySelectorAll('.catalog-query button.item').length === 0");

    // By keyboard: arrow keys move between the views; Enter opens a catalog entry and drops
    // the table after its confirmation.
    b.eval("document.getElementById('tab-catalog').focus()");
    b.press("ArrowRight", "ArrowRight", 39, false);
    assert_eq!(b.eval("[document.activeElement.id, document.getElementById('panel-charts').hidden]"), json!(["tab-charts", false]));
    b.press("ArrowLeft", "ArrowLeft", 37, false);
    b.press("ArrowLeft", "ArrowLeft", 37, false);
    assert_eq!(b.eval("[document.activeElement.id, document.getElementById('panel-sql').hidden]"), json!(["tab-sql", false]));
    b.eval("document.querySelector('.catalog-table button.item').focus()");
    b.press_enter();
    b.wait_until("the table's description", "document.querySelector('.detail h2')?.textContent === 'TABLE PER_PAGE'");
    b.eval("[...document.querySelectorAll('.detail button.danger')].find(x => x.textContent === 'Drop table').focus()");
    b.press_enter();
    b.wait_until("the confirmation, focused on Cancel", "document.activeElement?.textContent === 'Cancel' && !!document.querySelector('dialog.confirm[open]')");
    b.eval("document.querySelector('dialog.confirm button.danger').focus()");
    b.press_enter();
    b.wait_until("the table to be dropped", "document.querySelector('.detail h2')?.textContent === 'Dropped PER_PAGE'");
    let tables = server.ksql_ok("SHOW TABLES;").await;
    assert_eq!(tables[0]["tables"].as_array().map(Vec::len), Some(0), "{tables}");
}

#[tokio::test]
async fn console_tails_a_topic_from_an_offset_or_the_end_and_runs_print_and_pull_queries() {
    let server = TestServer::start();
    server.ksql_ok("CREATE STREAM events (id VARCHAR KEY, kind VARCHAR) WITH (kafka_topic='events', partitions=1, value_format='JSON');").await;
    let record = |i: u32| json!({"key": format!("k{i}"), "value": {"KIND": format!("kind-{i}")}, "headers": [{"key": "trace", "value": format!("t{i}")}]});
    server.produce("events", (0..3).map(record).collect()).await;
    let mut b = open_console(&server);
    b.click("#tab-topics");
    b.wait_until("the topic in the viewer", "[...document.querySelectorAll('#tail-topic option')].some(o => o.value === 'events')");
    b.eval(
        "(() => { const t = document.getElementById('tail-topic'); t.value = 'events'; const f = document.getElementById('tail-from'); \
            f.value = 'offset'; f.dispatchEvent(new Event('change')); })()",
    );
    b.click("#tail-offset");
    b.press("a", "KeyA", 65, true);
    b.type_text("1");
    b.click(".topic-viewer button.primary");
    b.wait_until("records from offset 1", "document.querySelectorAll('.records tbody tr').length === 2");
    let first = b.eval("[...document.querySelectorAll('.records tbody tr')[0].cells].map(c => c.textContent)");
    assert_eq!(first[0], json!("0"), "partition");
    assert_eq!(first[1], json!("1"), "offset");
    assert_eq!(first[3], json!("k1"));
    assert_eq!(first[4], json!("{\"KIND\":\"kind-1\"}"));
    assert_eq!(first[5], json!("trace=t1"));
    // A record produced while tailing arrives.
    server.produce("events", vec![record(3)]).await;
    b.wait_until("the new record", "document.querySelector('.records tbody').innerText.includes('kind-3')");
    b.screenshot(screenshots().as_deref(), "console-topic-viewer.png");

    // From the end: only what is produced after the tail started.
    b.eval("(() => { const f = document.getElementById('tail-from'); f.value = 'end'; f.dispatchEvent(new Event('change')); })()");
    b.click(".topic-viewer button:not(.primary)");
    b.click(".topic-viewer button.primary");
    b.wait_until("the tail to wait at the end", "document.querySelector('.topic-viewer .live-status').textContent.includes('waiting for more')");
    assert_eq!(b.eval("document.querySelectorAll('.records tbody tr').length"), json!(0));
    server.produce("events", vec![record(4)]).await;
    b.wait_until("only the new record", "document.querySelectorAll('.records tbody tr').length === 1");
    assert_eq!(b.eval("document.querySelector('.records tbody tr').cells[1].textContent"), json!("4"));

    // PRINT and a pull query from the editor: PRINT's lines, and a table that ends.
    b.click("#tab-sql");
    run_in_editor(&mut b, "PRINT 'events' FROM BEGINNING LIMIT 2;\nSELECT id, kind FROM events;");
    b.wait_until("PRINT's lines", "document.querySelector('.results article.result:last-child .print-lines')?.textContent.includes('kind-1')");
    b.wait_until("the pull query's end", &format!("{NEWEST_RESULT}.includes('done: 5 rows')"));
    let kinds = b.eval("[...document.querySelectorAll('.results article.result')[0].querySelectorAll('tbody tr')].map(r => r.cells[1].textContent).sort()");
    assert_eq!(kinds, json!(["kind-0", "kind-1", "kind-2", "kind-3", "kind-4"]));
}

#[tokio::test]
async fn console_says_when_the_server_is_down_and_reconnects() {
    let mut server = TestServer::start();
    let mut b = open_console(&server);
    assert!(server.stop(), "the server stops cleanly");
    b.wait_until("the down banner", "document.querySelector('.connection.down')?.textContent.includes('Cannot reach the Eddy server')");
    // A statement run while it is down says so.
    run_in_editor(&mut b, "SHOW STREAMS;");
    b.wait_until("the statement's failure", &format!("{NEWEST_RESULT}.includes('Not run: cannot reach the server')"));
    server.restart_at_same_address();
    b.wait_until("the reconnection", "document.body.dataset.server === 'up' && !document.querySelector('.connection.down')");
    server.ksql_ok("CREATE STREAM after_restart (id VARCHAR KEY, n INT) WITH (kafka_topic='after_restart', partitions=1, value_format='JSON');").await;
    b.wait_until(
        "the catalog to show what changed while it was away",
        "[...document.querySelectorAll('.catalog-stream button.item')].some(e => e.textContent.trim() === 'AFTER_RESTART')",
    );
}

#[tokio::test]
async fn console_is_served_to_browsers_at_the_root_and_api_clients_still_get_info() {
    let server = TestServer::start();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let browser = client.get(format!("{}/", server.url)).header("accept", "text/html,*/*;q=0.8").send().await.expect("GET /");
    assert_eq!(browser.headers()["location"], "/console/");
    let api = client.get(format!("{}/", server.url)).header("accept", "application/json").send().await.expect("GET /");
    assert_eq!(api.headers()["location"], "/info");
    let page = client.get(format!("{}/console/", server.url)).send().await.expect("console");
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"].to_str().is_ok_and(|p| p.contains("default-src 'self'")));
    let script = client.get(format!("{}/console/app.js", server.url)).header("accept-encoding", "gzip").send().await.expect("app.js");
    assert_eq!(script.headers()["content-encoding"], "gzip");
    let tag = script.headers()["etag"].clone();
    let again = client.get(format!("{}/console/app.js", server.url)).header("if-none-match", tag).send().await.expect("app.js");
    assert_eq!(again.status(), 304);
    let missing = client.get(format!("{}/console/nothing.js", server.url)).send().await.expect("missing");
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn console_completes_catalog_names_functions_and_keywords_and_keeps_a_history() {
    let server = TestServer::start();
    server
        .ksql_ok("CREATE STREAM clickstream (user_id VARCHAR KEY, page_url VARCHAR) WITH (kafka_topic='click_topic', partitions=1, value_format='JSON');")
        .await;
    let mut b = open_console(&server);
    let options = "[...document.querySelectorAll('.cm-tooltip-autocomplete li')].map(o => o.textContent)";
    let offered = |b: &mut Browser, label: &str| {
        b.wait_until(&format!("{label} among the completions"), &format!("{options}.some(o => o.startsWith({label:?}))"));
    };
    // A source, then its column after the source's name and a dot.
    b.click(".cm-content");
    b.press("a", "KeyA", 65, true);
    b.type_text("SELECT * FROM CLICKS");
    b.press(" ", "Space", 32, true);
    offered(&mut b, "CLICKSTREAM");
    b.press("Escape", "Escape", 27, false);
    b.type_text("TREAM WHERE CLICKSTREAM.PAGE");
    b.press(" ", "Space", 32, true);
    offered(&mut b, "PAGE_URL");
    b.press("Escape", "Escape", 27, false);
    // A function, a keyword and a topic name inside quotes.
    b.type_text(" = UCA");
    b.press(" ", "Space", 32, true);
    offered(&mut b, "UCASE");
    b.press("Escape", "Escape", 27, false);
    b.type_text("SE('x') EMI");
    b.press(" ", "Space", 32, true);
    offered(&mut b, "EMIT");
    b.press("Escape", "Escape", 27, false);
    b.type_text(" CHANGES; PRINT 'click_");
    b.press(" ", "Space", 32, true);
    offered(&mut b, "click_topic");
    b.press("Escape", "Escape", 27, false);

    // What ran comes back with Ctrl-Up, newest first.
    run_in_editor(&mut b, "SHOW TOPICS;");
    b.wait_until("the statement's result", &format!("{NEWEST_RESULT}.includes('click_topic')"));
    run_in_editor(&mut b, "SHOW STREAMS;");
    b.wait_until("the statement's result", &format!("{NEWEST_RESULT}.includes('CLICKSTREAM')"));
    b.click(".cm-content");
    b.press("a", "KeyA", 65, true);
    b.type_text("-- a draft");
    b.press("ArrowUp", "ArrowUp", 38, true);
    assert_eq!(b.eval("document.querySelector('.cm-content').innerText.trim()"), json!("SHOW STREAMS;"));
    b.press("ArrowUp", "ArrowUp", 38, true);
    assert_eq!(b.eval("document.querySelector('.cm-content').innerText.trim()"), json!("SHOW TOPICS;"));
}

#[tokio::test]
async fn console_works_in_firefox_too() {
    use firefox::{CONTROL, ENTER, Firefox};
    let server = TestServer::start();
    let mut ff = Firefox::launch();
    ff.goto(&format!("{}/console/", server.url));
    ff.wait_until("the console to read the catalog", "document.body.dataset.ready === 'true'");
    let run = |ff: &mut Firefox, sql: &str| {
        ff.focus(".cm-content");
        ff.keys(&[CONTROL], "a");
        ff.keys(&[], sql);
        ff.keys(&[CONTROL], ENTER);
    };
    run(&mut ff, "CREATE STREAM orders (id VARCHAR KEY, total INT) WITH (kafka_topic='orders', partitions=1, value_format='JSON');");
    ff.wait_until("the stream to be created", &format!("{NEWEST_RESULT}.includes('Stream created')"));
    ff.wait_until("the catalog to list it", "[...document.querySelectorAll('.catalog-stream button.item')].some(e => e.textContent.trim() === 'ORDERS')");
    run(&mut ff, "SELECT * FROM orders EMIT CHANGES;");
    ff.wait_until("the push query to run", "document.querySelector('.live-status')?.textContent.startsWith('running')");
    server.ksql_ok("INSERT INTO orders (id, total) VALUES ('o-17', 42);").await;
    ff.wait_until("the row in the live table", "document.querySelector('.live-table tbody')?.innerText.includes('o-17')");
    run(&mut ff, "SHOW STREAMS;\nSELEC 1;");
    ff.wait_until("the error marked on line 2", "document.querySelector('.cm-lintRange-error')?.textContent === 'SELEC'");
    ff.eval("document.getElementById('tab-charts').click()");
    ff.wait_until("the charts drawn", "document.querySelectorAll('.charts canvas').length > 0 || !!document.querySelector('.charts .empty')");
}
