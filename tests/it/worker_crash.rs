//! Workers that die or are stopped mid-job: a SIGKILLed `redline worker` loses its lease and
//! another worker finishes the job, once; SIGTERM gives the job back to the queue.

use crate::common::app::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_job_is_finished_by_another_exactly_once() {
    let gh = github_with_pr();
    gh.delay_files(Duration::from_secs(30));
    let dir = tempfile::tempdir().unwrap();
    let mut env = app_env(dir.path(), &gh);
    // The webhook server alone; workers run as separate processes.
    let mut server_env = env.clone();
    server_env.push(("REDLINE_WORKERS".into(), "0".into()));
    let server = start("serve", dir.path(), &server_env);
    env.push(("REDLINE_WORKERS".into(), "1".into()));
    let mut first = start("worker", dir.path(), &env);

    let (status, _) = deliver_signed(
        server.addr.as_ref().unwrap(),
        "pull_request",
        "k-1",
        &opened(),
    )
    .await;
    assert_eq!(status, 202);
    wait_for(30, "the first worker to be mid-job", || {
        gh.requests()
            .iter()
            .any(|r| r.path.ends_with("/pulls/7/files"))
    })
    .await;
    let before = jobs(dir.path());
    assert_eq!(before[0]["status"], "running");
    let first_owner = before[0]["lease_owner"].as_str().unwrap().to_string();
    first.kill(); // SIGKILL: no chance to release anything
    gh.delay_files(Duration::ZERO);

    let second = start("worker", dir.path(), &env);
    let settled = wait_jobs_settled(dir.path(), 60).await;
    assert_eq!(settled.len(), 1);
    let job = &settled[0];
    assert_eq!(job["status"], "done", "{job:#}");
    assert_eq!(job["attempts"], 2, "claimed again after the lease expired");
    assert!(
        job["outcome"]
            .as_str()
            .unwrap()
            .starts_with("posted review"),
        "{job:#}"
    );
    let reviews = gh.reviews(REPO, 7);
    assert_eq!(reviews.len(), 1, "posted once");
    assert_eq!(reviews[0]["comments"].as_array().unwrap().len(), 3);
    let posts = gh
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/reviews"))
        .count();
    assert_eq!(posts, 1, "no second attempt at posting");
    assert!(second.logs().contains("job finished"), "{}", second.logs());
    assert_ne!(
        jobs(dir.path())[0]["lease_owner"].as_str(),
        Some(first_owner.as_str()),
        "the dead worker no longer holds anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_gives_an_unfinished_job_back() {
    let gh = github_with_pr();
    gh.delay_files(Duration::from_secs(30));
    let dir = tempfile::tempdir().unwrap();
    let mut env = app_env(dir.path(), &gh);
    env.push(("REDLINE_WORKERS".into(), "1".into()));
    env.push(("REDLINE_SHUTDOWN_GRACE_SECS".into(), "1".into()));
    let server = start("serve", dir.path(), &env);
    let (status, _) = deliver_signed(
        server.addr.as_ref().unwrap(),
        "pull_request",
        "t-1",
        &opened(),
    )
    .await;
    assert_eq!(status, 202);
    wait_for(30, "the job to be mid-way", || {
        gh.requests()
            .iter()
            .any(|r| r.path.ends_with("/pulls/7/files"))
    })
    .await;
    let mut server = server;
    let started = std::time::Instant::now();
    let exit = server.terminate();
    assert!(
        exit.success(),
        "clean exit on SIGTERM: {exit:?}\n{}",
        server.logs()
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopped within the grace period"
    );
    let js = jobs(dir.path());
    assert_eq!(
        js[0]["status"], "queued",
        "released for another worker: {:#}",
        js[0]
    );
    assert_eq!(js[0]["attempts"], 0, "a released attempt does not count");
    assert!(
        server.logs().contains("job released at shutdown"),
        "{}",
        server.logs()
    );
    assert!(gh.reviews(REPO, 7).is_empty());
}
