//! [`OtlpReceiver`]: a small OpenTelemetry collector on 127.0.0.1 that
//! decodes what the host exports with the official proto types.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Frame, Incoming};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

/// An OTLP receiver for traces: `POST /v1/traces` (HTTP/protobuf) and the
/// gRPC `TraceService/Export` (HTTP/2 without TLS), on one port. Keeps
/// every span with its resource's `service.name`.
pub struct OtlpReceiver {
    pub addr: SocketAddr,
    spans: Arc<Mutex<Vec<(String, Span)>>>,
    /// Export requests by transport: `http` or `grpc`.
    requests: Arc<Mutex<Vec<&'static str>>>,
}

impl OtlpReceiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (keep, count) = (spans.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (keep, count) = (keep.clone(), count.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let (keep, count) = (keep.clone(), count.clone());
                        async move { Ok::<_, Infallible>(answer(request, keep, count).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                });
            }
        });
        Self {
            addr,
            spans,
            requests,
        }
    }

    /// The base URL to give the host (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far, with its service name.
    pub fn spans(&self) -> Vec<(String, Span)> {
        self.spans.lock().unwrap().clone()
    }

    /// The transport of every export request so far.
    pub fn requests(&self) -> Vec<&'static str> {
        self.requests.lock().unwrap().clone()
    }
}

type Answer = http::Response<http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>>;

async fn answer(
    request: http::Request<Incoming>,
    keep: Arc<Mutex<Vec<(String, Span)>>>,
    count: Arc<Mutex<Vec<&'static str>>>,
) -> Answer {
    let grpc = request
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    let path = request.uri().path().to_owned();
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let message = if grpc {
        // One length-prefixed message: flag (uncompressed), u32 length.
        assert_eq!(
            path,
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        );
        assert_eq!(body[0], 0, "compressed gRPC message");
        body.slice(5..)
    } else {
        assert_eq!(path, "/v1/traces");
        body
    };
    let export = ExportTraceServiceRequest::decode(message).unwrap();
    count
        .lock()
        .unwrap()
        .push(if grpc { "grpc" } else { "http" });
    for resource in export.resource_spans {
        let service = resource
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(name) => Some(name.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                keep.lock().unwrap().push((service.clone(), span));
            }
        }
    }
    let reply = ExportTraceServiceResponse::default().encode_to_vec();
    if grpc {
        let mut framed = vec![0u8];
        framed.extend_from_slice(&(reply.len() as u32).to_be_bytes());
        framed.extend_from_slice(&reply);
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let body = Grpc {
            data: Some(Bytes::from(framed)),
            trailers: Some(trailers),
        };
        http::Response::builder()
            .header("content-type", "application/grpc")
            .body(body.boxed_unsync())
            .unwrap()
    } else {
        http::Response::builder()
            .header("content-type", "application/x-protobuf")
            .body(Full::new(Bytes::from(reply)).boxed_unsync())
            .unwrap()
    }
}

/// A gRPC answer's body: one data frame, then the trailers (its status).
struct Grpc {
    data: Option<Bytes>,
    trailers: Option<http::HeaderMap>,
}

impl http_body::Body for Grpc {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = match self.data.take() {
            Some(data) => Some(Frame::data(data)),
            None => self.trailers.take().map(Frame::trailers),
        };
        std::task::Poll::Ready(frame.map(Ok))
    }
}

/// The span's attribute `key` as text (strings as they are, numbers
/// written out).
pub fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span
        .attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match value {
        AnyValue::StringValue(text) => text.clone(),
        AnyValue::IntValue(n) => n.to_string(),
        AnyValue::BoolValue(b) => b.to_string(),
        AnyValue::DoubleValue(f) => f.to_string(),
        other => format!("{other:?}"),
    })
}
