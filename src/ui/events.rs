//! Server-sent events in the browser: one `EventSource` per live part of a page, closed when
//! that part goes away. The browser reconnects by itself when the stream drops.

/// Calls `on_message` with the data of every `event` sent at `url`, and `on_state` with whether
/// the stream is connected (false when it could not open or dropped; true again once the
/// browser has reconnected). Lives as long as the calling component.
#[cfg(feature = "hydrate")]
pub fn listen(
    url: &str,
    event: &str,
    on_message: impl FnMut(String) + 'static,
    on_state: impl Fn(bool) + Clone + 'static,
) {
    use leptos::prelude::on_cleanup;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    let Ok(source) = web_sys::EventSource::new(url) else {
        on_state(false);
        return;
    };
    let mut on_message = on_message;
    let on_event = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |message: web_sys::MessageEvent| {
        on_message(message.data().as_string().unwrap_or_default())
    });
    let opened = on_state.clone();
    let on_open = Closure::<dyn FnMut()>::new(move || opened(true));
    let on_error = Closure::<dyn FnMut()>::new(move || on_state(false));
    let _ = source.add_event_listener_with_callback(event, on_event.as_ref().unchecked_ref());
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    let kept = send_wrapper::SendWrapper::new((source, on_event, on_open, on_error));
    on_cleanup(move || kept.0.close());
}
