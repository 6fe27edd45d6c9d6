//! Page renders, each alone on a thread of its own.
//!
//! Leptos keeps "the current owner" — the scope that owns a component's signals and disposes
//! them — in a thread-local, and its server-side `Suspense` waits for resources through effects
//! it spawns on the executor. On axum's multi-threaded runtime a render resumes on whichever
//! worker is free, where the thread-local names the root of whichever request ran there last,
//! and its effects run on other threads. Under concurrent page loads that showed as a page whose
//! signals were disposed under it mid-render ("you tried to access a reactive value … but it has
//! already been disposed": a 500) and, more rarely, as a render that never finished (a lost
//! wake-up between threads). `tests/overview.rs` loads pages concurrently to prove both gone.
//!
//! So every page render (a `GET` outside `/api/`) runs on a small pool of render threads, each
//! with a single-threaded runtime, one render at a time: the render, its resources' fetches and
//! effects all stay on that thread, and the whole response is produced there before the next
//! render starts. Server functions and the plain routes (the live event stream among them) stay
//! on the main runtime.
//!
//! Upstream: the disposed-value panic is leptos-rs/leptos#3627 ("Panic when loading a blocking
//! resource", with #2995), for which leptos-rs/leptos#3595 ("fix: occasional use-after-disposed
//! panic in Suspense") was still open when this was written. It was seen here with leptos 0.8.23
//! and leptos_axum 0.8.10. To learn whether the pool is still needed after an upgrade, take the
//! `isolate` layer out of `startup.rs` and run
//! `tests/overview.rs::pages_rendered_at_the_same_time_all_answer_whole` a few times: when it
//! passes every time, the pool can go.
//!
//! The queue in front of the threads is bounded ([`QUEUE_PER_THREAD`] renders per thread): a
//! flood of page loads beyond it is answered `503 Service Unavailable` with `Retry-After` at
//! once, instead of piling up memory and answering everyone late.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

/// Each render thread's stack.
const RENDER_STACK: usize = 16 * 1024 * 1024;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Renders that may wait per render thread.
pub const QUEUE_PER_THREAD: usize = 8;

/// A handle on the render threads; cloning it shares them.
#[derive(Clone)]
pub struct RenderPool {
    jobs: mpsc::Sender<Job>,
}

/// Why a render did not produce a page.
enum Refused {
    Busy,
    Panicked,
}

impl RenderPool {
    /// Starts `threads` render threads (at least one). They end when the last handle is dropped.
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>(threads.max(1) * QUEUE_PER_THREAD);
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let queue = Arc::clone(&queue);
            // a page's view is a deeply nested type and its render recurses as deep: a debug
            // build overflowed the default 2 MiB on the environment page. The stack is virtual
            // memory, taken only as deep as a render goes
            let builder = std::thread::Builder::new().name(format!("render-{n}")).stack_size(RENDER_STACK);
            builder.spawn(move || {
                runtime.block_on(async move {
                    loop {
                        let Some(job) = queue.lock().await.recv().await else { break };
                        // a panicking render ends its own task, not the thread; its caller hears
                        // of it through the dropped reply
                        let _ = tokio::spawn(job).await;
                    }
                });
            })?;
        }
        Ok(Self { jobs })
    }

    /// Runs `future` on a render thread and waits for its result; refused at once when the
    /// queue is full.
    async fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, Refused> {
        let (reply, answer) = oneshot::channel();
        let job = Box::pin(async move {
            let _ = reply.send(future.await);
        });
        self.jobs.try_send(job).map_err(|_| Refused::Busy)?;
        answer.await.map_err(|_| Refused::Panicked)
    }
}

/// Middleware: sends page renders to the render threads, everything else straight on.
pub async fn isolate(State(pool): State<RenderPool>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let page = matches!(*request.method(), Method::GET | Method::HEAD)
        && !path.starts_with("/api/")
        && !super::headers::is_static(path);
    if !page {
        return next.run(request).await;
    }
    let path = request.uri().path().to_owned();
    let rendered = pool
        .run(async move {
            let (parts, body) = next.run(request).await.into_parts();
            // read to the end here: the rest of a page's stream is still Leptos rendering
            axum::body::to_bytes(body, usize::MAX)
                .await
                .map(|bytes| Response::from_parts(parts, Body::from(bytes)))
        })
        .await;
    match rendered {
        Ok(Ok(response)) => return response,
        Ok(Err(error)) => tracing::error!(%path, %error, "a page render failed"),
        Err(Refused::Panicked) => tracing::error!(%path, "a page render panicked"),
        Err(Refused::Busy) => {
            tracing::warn!(%path, "too many pages at once: refused a render");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(axum::http::header::RETRY_AFTER, "1")],
                "The console is rendering too many pages at once; try again in a moment.\n",
            )
                .into_response();
        }
    }
    (StatusCode::INTERNAL_SERVER_ERROR, "This page could not be rendered; the server log has the cause.")
        .into_response()
}
