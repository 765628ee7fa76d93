//! The per-request context handed to `Api` methods, in the openapi-generator
//! style: handlers ask for what they need through `swagger::Has<T>`.

use crate::caller::ClientAddr;
use swagger::auth::{AuthData, Authorization};
use swagger::{Has, XSpanIdString};

/// What the edge learned about a request before calling the `Api`.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The request id, from `X-Span-ID` or generated.
    pub span_id: XSpanIdString,
    /// The raw credential the client presented, if any.
    pub auth_data: Option<AuthData>,
    /// The authenticated user (`subject` is the user id), when the token was valid.
    pub authorization: Option<Authorization>,
    /// Where the request came from; `None` when not served over TCP (tests).
    pub client_addr: Option<ClientAddr>,
}

impl RequestContext {
    /// A context for an anonymous request.
    pub fn new(span_id: XSpanIdString, client_addr: Option<ClientAddr>) -> Self {
        RequestContext {
            span_id,
            auth_data: None,
            authorization: None,
            client_addr,
        }
    }
}

macro_rules! has {
    ($ty:ty, $field:ident) => {
        impl Has<$ty> for RequestContext {
            fn get(&self) -> &$ty {
                &self.$field
            }
            fn get_mut(&mut self) -> &mut $ty {
                &mut self.$field
            }
            fn set(&mut self, value: $ty) {
                self.$field = value;
            }
        }
    };
}

has!(XSpanIdString, span_id);
has!(Option<AuthData>, auth_data);
has!(Option<Authorization>, authorization);
has!(Option<ClientAddr>, client_addr);
