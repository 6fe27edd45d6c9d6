//! JSON for server-function results, decoded from text. `serde_json` instantiates a decoder per
//! type and per reader; the console's hydrated resources and its event stream read JSON from
//! text, so decoding server-function results from text too keeps one set of decoders in the
//! WebAssembly instead of two (the stock codec reads from bytes).

use leptos::server_fn::codec::Post;
use leptos::server_fn::Bytes;
use leptos::server_fn::{ContentType, Decodes, Encodes, Format, FormatType};
use serde::{de::DeserializeOwned, Serialize};

/// `application/json`, decoded with `serde_json::from_str`.
pub struct JsonTextEncoding;

impl ContentType for JsonTextEncoding {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for JsonTextEncoding {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for JsonTextEncoding {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<Bytes, Self::Error> {
        serde_json::to_vec(output).map(Bytes::from)
    }
}

impl<T: DeserializeOwned> Decodes<T> for JsonTextEncoding {
    type Error = serde_json::Error;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        let text = std::str::from_utf8(&bytes).map_err(serde::de::Error::custom)?;
        serde_json::from_str(text)
    }
}

/// Results as JSON text in the body of the `POST` response.
pub type JsonText = Post<JsonTextEncoding>;
