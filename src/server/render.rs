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

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A handle on the render threads; cloning it shares them.
#[derive(Clone)]
pub struct RenderPool {
    jobs: mpsc::UnboundedSender<Job>,
}

impl RenderPool {
    /// Starts `threads` render threads (at least one). They end when the last handle is dropped.
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::unbounded_channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let queue = Arc::clone(&queue);
            std::thread::Builder::new().name(format!("render-{n}")).spawn(move || {
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

    /// Runs `future` on a render thread and waits for its result; `None` if it panicked.
    async fn run<T: Send + 'static>(&self, future: impl Future<Output = T> + Send + 'static) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        let job = Box::pin(async move {
            let _ = reply.send(future.await);
        });
        self.jobs.send(job).ok()?;
        answer.await.ok()
    }
}

/// Middleware: sends page renders to the render threads, everything else straight on.
pub async fn isolate(State(pool): State<RenderPool>, request: Request, next: Next) -> Response {
    let page =
        matches!(*request.method(), Method::GET | Method::HEAD) && !request.uri().path().starts_with("/api/");
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
        Some(Ok(response)) => return response,
        Some(Err(error)) => tracing::error!(%path, %error, "a page render failed"),
        None => tracing::error!(%path, "a page render panicked"),
    }
    (StatusCode::INTERNAL_SERVER_ERROR, "This page could not be rendered; the server log has the cause.")
        .into_response()
}
