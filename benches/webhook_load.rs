//! Webhook load: signed `pull_request` deliveries at a fixed rate against a running
//! `redline serve`, measuring each request's latency until the server has stored the delivery and
//! its job and answered; then checks that every accepted delivery is in the store exactly once.
//!
//!     cargo bench --bench webhook_load -- ADDR SECRET DATABASE_URL [RATE] [SECONDS]
//!
//! `scripts/bench-webhook.sh` starts the server and runs this.

use hmac::{Hmac, KeyInit, Mac};
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [addr, secret, db] = [0, 1, 2].map(|i| {
        args.get(i)
            .cloned()
            .expect("ADDR SECRET DATABASE_URL [RATE] [SECONDS]")
    });
    let rate: u64 = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(500);
    let seconds: u64 = args.get(4).and_then(|v| v.parse().ok()).unwrap_or(10);
    let n = rate * seconds;
    let template: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/github/webhooks/pull_request.opened.json"
    ))?)?;
    let run = std::process::id();
    // Bodies and signatures are made before the clock starts.
    let requests: Vec<(String, Vec<u8>, String)> = (0..n)
        .map(|i| {
            let mut v = template.clone();
            v["number"] = (i + 1000).into();
            v["pull_request"]["number"] = (i + 1000).into();
            let body = serde_json::to_vec(&v).unwrap();
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(&body);
            (
                format!("load-{run}-{i}"),
                body,
                format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
            )
        })
        .collect();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let url = format!("{addr}/webhook");
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(n as usize);
    for (i, (id, body, sig)) in requests.into_iter().enumerate() {
        let at = start + Duration::from_nanos(i as u64 * 1_000_000_000 / rate);
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let t = Instant::now();
            let r = client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-github-event", "pull_request")
                .header("x-github-delivery", &id)
                .header("x-hub-signature-256", sig)
                .body(body)
                .send()
                .await;
            let status = r.map(|r| r.status().as_u16()).unwrap_or(0);
            (t.elapsed(), status, id)
        }));
    }
    let mut lat = Vec::new();
    let mut accepted = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (d, status, id) = t.await?;
        if status == 202 {
            lat.push(d);
            accepted.push(id);
        } else {
            failed += 1;
        }
    }
    let wall = start.elapsed();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    println!(
        "{n} deliveries at {rate}/s over {:.1} s: {} accepted, {failed} failed | latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        wall.as_secs_f64(),
        accepted.len(),
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
        lat.last().unwrap().as_secs_f64() * 1000.0
    );

    // Every accepted delivery is stored exactly once, with exactly one job.
    let store = redline::store::Store::connect(&db).await?;
    let prefix = format!("load-{run}-%");
    let (deliveries, distinct): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT id) FROM deliveries WHERE id LIKE $1")
            .bind(&prefix)
            .fetch_one(store.pool())
            .await?;
    let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE delivery_id LIKE $1")
        .bind(&prefix)
        .fetch_one(store.pool())
        .await?;
    println!(
        "store: {deliveries} deliveries ({distinct} distinct), {jobs} jobs for {} accepted",
        accepted.len()
    );
    assert_eq!(deliveries as usize, accepted.len());
    assert_eq!(distinct, deliveries);
    assert_eq!(jobs as usize, accepted.len());
    Ok(())
}
