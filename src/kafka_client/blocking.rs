//! Waiting for the client's futures from blocking code (the log's callers), wherever that
//! code runs: a plain or blocking-pool thread waits on the client's runtime; a worker of
//! a multi-threaded runtime first tells it that it blocks; a single-threaded runtime's
//! thread (the HTTP workers) hands the future to the client's runtime and waits for the
//! answer (it may not block inside its own runtime).

use std::future::Future;

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `future` on `runtime` and waits for its output.
pub fn wait<F>(runtime: &Handle, future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match Handle::try_current() {
        Err(_) => runtime.block_on(future),
        Ok(current) if current.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| runtime.block_on(future)),
        Ok(_) => {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            runtime.spawn(async move {
                let _ = tx.send(future.await);
            });
            // The runtime runs the task to completion unless it is shutting down, when the
            // process is ending anyway.
            rx.recv().unwrap_or_else(|_| panic!("the Kafka client's runtime stopped while a request was waiting"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_from_plain_threads_multi_threaded_workers_and_single_threaded_runtimes() {
        let client = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let handle = client.handle().clone();
        assert_eq!(wait(&handle, async { 1 }), 1);
        let h = handle.clone();
        assert_eq!(client.block_on(async move { tokio::spawn(async move { wait(&h, async { 2 }) }).await.unwrap() }), 2);
        let single = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let h = handle.clone();
        assert_eq!(single.block_on(async move { wait(&h, async { 3 }) }), 3);
        let h = handle.clone();
        assert_eq!(single.block_on(async move { tokio::task::spawn_blocking(move || wait(&h, async { 4 })).await.unwrap() }), 4);
    }
}
