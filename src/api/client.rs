//! The console's server-function client: the browser's `fetch`, plus a header no other site can
//! make a browser send. A cross-site form cannot set it, and a cross-site script that tries
//! needs a CORS preflight this server never grants; the session guard refuses cookie-carrying
//! server-function calls without it (defence beside the Origin / `Sec-Fetch-Site` check).

use leptos::server_fn::client::browser::BrowserClient;
use leptos::server_fn::client::Client;
use leptos::server_fn::error::FromServerFnError;
use leptos::server_fn::request::browser::BrowserRequest;
use leptos::server_fn::response::browser::BrowserResponse;
use std::future::Future;

/// The header every server-function call from the console carries, and its value.
pub const HEADER: (&str, &str) = ("x-sti-console", "1");

/// `BrowserClient` with [`HEADER`] set on every request.
pub struct ConsoleClient;

impl<E, I, O> Client<E, I, O> for ConsoleClient
where
    E: FromServerFnError,
    I: FromServerFnError,
    O: FromServerFnError,
{
    type Request = BrowserRequest;
    type Response = BrowserResponse;

    fn send(req: Self::Request) -> impl Future<Output = Result<Self::Response, E>> + Send {
        req.headers().set(HEADER.0, HEADER.1);
        <BrowserClient as Client<E, I, O>>::send(req)
    }

    fn open_websocket(
        path: &str,
    ) -> impl Future<
        Output = Result<
            (
                impl futures::Stream<Item = Result<leptos::server_fn::Bytes, leptos::server_fn::Bytes>>
                    + Send
                    + 'static,
                impl futures::Sink<leptos::server_fn::Bytes> + Send + 'static,
            ),
            E,
        >,
    > + Send {
        <BrowserClient as Client<E, I, O>>::open_websocket(path)
    }

    fn spawn(future: impl Future<Output = ()> + Send + 'static) {
        <BrowserClient as Client<E, I, O>>::spawn(future)
    }
}
