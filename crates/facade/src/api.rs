//! One request's way through the merchant API: path → [`Service`], method, a bounded body,
//! `assist::decode`, the merchant, its credentials or its order's integrity, the service, and the
//! answer rendered in the request's Format.
//!
//! Owns the HTTP side of every service and the order of checks (the cheapest and least
//! revealing first). Must never read more of a body than its service's limit, answer with a
//! status or text that shows internals, or log a parameter's value.

use std::sync::Arc;

use assist::answer::{Answer, Body};
use assist::codes::{Fault, FirstCode, SecondCode};
use assist::render::{Rendered, render};
use assist::requests::{Credentials, Payload, Request, Service, decode};
use assist::values::{Format, MerchantId};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request as HttpRequest, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::merchants::Merchant;
use crate::{Facade, engine, one_click};

/// Largest form body or query accepted (the `assist` crate's own bound).
pub const FORM_BODY_LIMIT: usize = 256 * 1024;
/// Largest One Click JSON body accepted (the `assist` crate's own bound).
pub const JSON_BODY_LIMIT: usize = 16 * 1024;

/// What a service answers.
// One Outcome is made per request and answered at once: boxing the body would buy nothing but
// an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Outcome {
    /// An answer body in the request's Format.
    Body(Body),
    /// 303 to this URL (order.cfm: the shopper's browser goes to the payment page).
    Redirect(String),
}

pub(crate) fn router(facade: Arc<Facade>) -> Router {
    Router::new()
        .merge(crate::cabinet::routes())
        .merge(crate::pages::routes())
        .fallback(serve)
        .with_state(facade)
        .layer(axum::middleware::from_fn(crate::detach::run_to_end))
        .layer(axum::middleware::map_response(crate::headers::strict))
}

/// `fault` in `service`'s default Format, refused before the service ran, with the HTTP status
/// that says why and the header that says what to do (when to come back, which methods to use).
fn refusal(
    service: Service,
    fault: Fault,
    status: StatusCode,
    header: Option<(header::HeaderName, &'static str)>,
) -> Response {
    let mut response = respond(fault_in(service, fault, service.default_format()));
    *response.status_mut() = status;
    if let Some((name, value)) = header {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn serve(State(facade): State<Arc<Facade>>, request: HttpRequest) -> Response {
    let Some(service) = Service::from_path(request.uri().path()) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let Some(_admitted) = facade.admission.admit() else {
        let retry = Some((header::RETRY_AFTER, "1"));
        return refusal(
            service,
            Fault::internal(),
            StatusCode::SERVICE_UNAVAILABLE,
            retry,
        );
    };
    let method = request.method().clone();
    let get = method == Method::GET && service.accepts_get();
    if method != Method::POST && !get {
        let allow = if service.accepts_get() {
            "GET, POST"
        } else {
            "POST"
        };
        let fault = Fault::new(FirstCode::BadFormat, SecondCode::None, "method not allowed");
        let allow = Some((header::ALLOW, allow));
        return refusal(service, fault, StatusCode::METHOD_NOT_ALLOWED, allow);
    }
    let bytes = if get {
        Bytes::copy_from_slice(request.uri().query().unwrap_or_default().as_bytes())
    } else {
        match read_body(service, request).await {
            Ok(b) => b,
            Err(too_large) => return too_large,
        }
    };
    let payload = match (get, service.takes_json()) {
        (true, _) => Payload::Query(&bytes),
        (false, true) => Payload::Json(&bytes),
        (false, false) => Payload::Form(&bytes),
    };
    let decoded = match decode(service, payload) {
        Ok(r) => r,
        Err(rejection) => {
            tracing::debug!(path = service.path(), fault = %rejection.fault, "refused");
            return respond(fault_in(service, rejection.fault, rejection.format));
        }
    };
    let format = request_format(&decoded);
    match facade.answer(service, decoded).await {
        Ok(Outcome::Body(body)) => respond(render(
            &Answer {
                service,
                result: Ok(body),
            },
            format,
        )),
        Ok(Outcome::Redirect(url)) => match HeaderValue::from_str(&url) {
            Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
            Err(_) => respond(fault_in(service, Fault::internal(), format)),
        },
        Err(fault) => {
            tracing::debug!(path = service.path(), fault = %fault, "refused");
            respond(fault_in(service, fault, format))
        }
    }
}

/// The body up to the service's limit; past it, 413 without reading the rest (a declared length
/// over the limit is refused before any of it is read).
async fn read_body(service: Service, request: HttpRequest) -> Result<Bytes, Response> {
    let limit = if service.takes_json() {
        JSON_BODY_LIMIT
    } else {
        FORM_BODY_LIMIT
    };
    let too_large = || {
        let fault = Fault::new(
            FirstCode::BadFormat,
            SecondCode::None,
            "request body too large",
        );
        refusal(service, fault, StatusCode::PAYLOAD_TOO_LARGE, None)
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| too_large())
}

fn request_format(request: &Request) -> Format {
    match request {
        Request::Order(r) | Request::PayRequest(r) => r.format,
        Request::TokenPay(r) => r.format,
        Request::Recurrent(r) => r.format,
        Request::Charge(r) => r.format,
        Request::Cancel(r) => r.format,
        Request::OrderState(r) => r.format,
        Request::OrderResult(r) => r.format,
        Request::TokenList(_) | Request::TokenRemove(_) => Format::Json,
    }
}

fn fault_in(service: Service, fault: Fault, format: Format) -> Rendered {
    render(
        &Answer {
            service,
            result: Err(fault),
        },
        format,
    )
}

fn respond(r: Rendered) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(r.content_type),
        )],
        r.body,
    )
        .into_response()
}

/// The merchant is unknown (10/200).
fn unknown_merchant() -> Fault {
    Fault::new(
        FirstCode::NotFound,
        SecondCode::Merchant,
        "unknown merchant",
    )
}

impl Facade {
    /// The merchant of a request, if it may call this service.
    fn merchant(&self, id: MerchantId, service: Service) -> Result<&Merchant, Fault> {
        let merchant = self.merchants.get(id).ok_or_else(unknown_merchant)?;
        if !merchant.allows(service) {
            return Err(Fault::new(
                FirstCode::Authorization,
                SecondCode::Merchant,
                "service not enabled for this merchant",
            ));
        }
        Ok(merchant)
    }

    /// The merchant of a server-to-server call, its credentials verified.
    async fn authenticated(&self, c: &Credentials, service: Service) -> Result<&Merchant, Fault> {
        let merchant = self.merchant(c.merchant_id, service)?;
        self.auth
            .authenticate(merchant, &c.login, &c.password)
            .await?;
        Ok(merchant)
    }

    /// Admits the request (credentials, or an order's integrity) and runs the service.
    async fn answer(&self, service: Service, request: Request) -> Result<Outcome, Fault> {
        let merchant = self.admit(service, &request).await?;
        match request {
            Request::TokenList(r) => one_click::list(&*self.cards, merchant, &r)
                .await
                .map(Outcome::Body),
            Request::TokenRemove(r) => one_click::remove(&*self.cards, merchant, &r)
                .await
                .map(Outcome::Body),
            Request::Order(r) => engine::order(self, merchant, &r).await,
            Request::PayRequest(r) => engine::pay_request(self, merchant, &r).await,
            Request::TokenPay(r) => engine::token_pay(self, merchant, &r).await,
            Request::Recurrent(r) => engine::recurring(self, merchant, &r).await,
            Request::Charge(r) => engine::charge(self, merchant, &r).await,
            Request::Cancel(r) => engine::cancel(self, merchant, &r).await,
            Request::OrderState(r) => engine::order_state(self, merchant, &r),
            Request::OrderResult(r) => engine::order_result(self, merchant, &r),
        }
    }

    /// The merchant on whose behalf a request runs, once it is known to be that merchant's.
    async fn admit<'a>(
        &'a self,
        service: Service,
        request: &Request,
    ) -> Result<&'a Merchant, Fault> {
        let credentials = match request {
            Request::Order(r) | Request::PayRequest(r) => {
                let m = self.merchant(r.merchant_id, service)?;
                match (&r.credentials, service) {
                    // payrequest.cfm with Login and Password: they authenticate it.
                    (Some((login, password)), Service::PayRequest) => {
                        self.auth.authenticate(m, login, password).await?
                    }
                    // order.cfm (a shopper's browser brings it) or payrequest without them.
                    _ => m.integrity.verify(
                        &r.sealed.x,
                        r.sealed.checkvalue(),
                        r.sealed.signature(),
                    )?,
                }
                // Unscheduled MIT (RecurringIndicator=1 without bounds) is for MIT merchants.
                match &r.recurring {
                    Some(recurring) if !m.mit => {
                        recurring.require_agreement()?;
                    }
                    _ => {}
                }
                return Ok(m);
            }
            Request::TokenList(r) => &r.credentials,
            Request::TokenRemove(r) => &r.credentials,
            Request::TokenPay(r) => &r.credentials,
            Request::Recurrent(r) => &r.credentials,
            Request::Charge(r) => &r.credentials,
            Request::Cancel(r) => &r.credentials,
            Request::OrderState(r) => &r.credentials,
            Request::OrderResult(r) => &r.credentials,
        };
        self.authenticated(credentials, service).await
    }
}

#[cfg(test)]
pub(crate) mod tests;
