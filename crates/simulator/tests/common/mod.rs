//! A minimal ISO 8583 client over mutual TLS and request builders (through `iso8583::kinds`, as
//! the link builds them), enough to drive the simulator the way an acquirer would. Each test
//! binary uses part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use iso8583::{
    Amount, CardRequest, Condition, EntryMode, FrameCodec, Message, MessageBuilder, Mti,
    NetworkCode, Origin, Original, ProcessingCode, ReversalAttempt, Rrn, Stan, TransmissionTime,
};
use simulator::{DevPki, Faults, SimConfig, Simulator, SimulatorHandle};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::codec::Framed;

/// Bound on every wait in these tests: a guard against hanging, never a synchronisation.
pub const GUARD: Duration = Duration::from_secs(10);

pub const VISA: &str = "4111111111111111";
pub const MASTERCARD: &str = "5555555555554444";
pub const MIR: &str = "2200000000000004";
pub const ACQUIRER: &[u8] = b"123456";

pub struct Sim {
    pub handle: SimulatorHandle,
    pub pki: DevPki,
}

pub async fn start(faults: Faults) -> Sim {
    let pki = DevPki::generate();
    let mut config = SimConfig::with_pki(&pki);
    config.faults = faults;
    start_with(config, pki).await
}

pub async fn start_with(config: SimConfig, pki: DevPki) -> Sim {
    let iso = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let acs = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = Simulator::start(config, iso, acs).await.unwrap();
    Sim { handle, pki }
}

impl Sim {
    pub async fn client(&self) -> IsoClient {
        IsoClient::connect(self.handle.iso_addr, &self.pki)
            .await
            .unwrap()
    }
}

/// One TLS connection speaking length-prefixed ISO 8583.
pub struct IsoClient {
    pub framed: Framed<TlsStream<TcpStream>, FrameCodec>,
}

impl IsoClient {
    pub async fn connect(addr: SocketAddr, pki: &DevPki) -> std::io::Result<IsoClient> {
        let tcp = TcpStream::connect(addr).await?;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = TlsConnector::from(pki.client_config().unwrap())
            .connect(name, tcp)
            .await?;
        Ok(IsoClient {
            framed: Framed::new(tls, FrameCodec),
        })
    }

    pub async fn send(&mut self, msg: &Message) {
        self.framed.send(msg).await.unwrap();
    }

    /// Raw bytes straight onto the TLS stream (for malformed frames).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        let stream = self.framed.get_mut();
        stream.write_all(bytes).await.unwrap();
        stream.flush().await.unwrap();
    }

    /// The next frame, decoded; `None` when the server closed the connection.
    pub async fn recv(&mut self) -> Option<Message> {
        let frame = tokio::time::timeout(GUARD, self.framed.next())
            .await
            .expect("no frame in time")?;
        Some(Message::decode(frame.ok()?).expect("server sent an undecodable message"))
    }

    /// The next raw frame body (for checking a deliberately malformed response).
    pub async fn recv_frame(&mut self) -> Option<Result<Bytes, iso8583::FrameError>> {
        tokio::time::timeout(GUARD, self.framed.next())
            .await
            .expect("no frame in time")
    }

    pub async fn call(&mut self, msg: &Message) -> Message {
        self.send(msg).await;
        let response = self
            .recv()
            .await
            .expect("connection closed instead of a response");
        assert_eq!(response.stan(), msg.stan(), "response to another request");
        response
    }
}

static STAN: AtomicU32 = AtomicU32::new(1);

pub fn next_stan() -> Stan {
    Stan::new(STAN.fetch_add(1, Ordering::Relaxed) % Stan::MAX + 1).unwrap()
}

/// DE 7 of the current moment.
pub fn now_de7() -> TransmissionTime {
    let now = time::OffsetDateTime::now_utc();
    let s = format!(
        "{:02}{:02}{:02}{:02}{:02}",
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    TransmissionTime::from_ascii(s.as_bytes()).unwrap()
}

/// Where this test acquirer's requests come from, under `stan` now.
pub fn origin(stan: Stan) -> Origin<'static> {
    Origin {
        transmission: now_de7(),
        stan,
        acquirer: ACQUIRER,
        terminal: b"TERM0001",
        merchant: b"MERCHANT0000001",
        merchant_name: None,
        merchant_category: None,
    }
}

/// A 0100/0200 with every mandatory field; `de48` as (tag, value) pairs.
pub fn payment(mti: Mti, pan: &str, amount: u64, de48: &[(u8, &[u8])]) -> Message {
    payment_with(mti, ProcessingCode::Purchase, pan, amount, b"3012", de48)
}

pub fn payment_with(
    mti: Mti,
    processing: ProcessingCode,
    pan: &str,
    amount: u64,
    expiry: &[u8; 4],
    de48: &[(u8, &[u8])],
) -> Message {
    let stan = next_stan();
    let request = CardRequest {
        pan: pan.as_bytes(),
        processing,
        amount: Amount(amount),
        local_time: *b"120000",
        local_date: *b"1123",
        expiry: *expiry,
        entry_mode: EntryMode::Keyed,
        condition: Condition::Ecommerce,
        rrn: Rrn::from_number(u64::from(stan.value())).unwrap(),
        additional: de48,
        currency: 643,
    };
    MessageBuilder::card_request(mti, &request, &origin(stan))
        .build()
        .unwrap()
}

/// What a follow-up of `original` quotes of it.
pub fn original_of(original: &Message) -> Original<'_> {
    Original::of(original).expect("a request of ours")
}

/// A reversal (0400, 0420 or 0421, partial when `replacement` is given) or a completion (0220,
/// for `amount`) of `original`. A reversal quotes the original's amount, so `amount` must be it.
pub fn follow_up(mti: Mti, original: &Message, amount: u64, replacement: Option<u64>) -> Message {
    let o = original_of(original);
    let origin = origin(next_stan());
    let pan = original.field(2);
    let attempt = match mti {
        Mti::COMPLETION_ADVICE => {
            return MessageBuilder::completion(&o, pan.unwrap(), b"3012", Amount(amount), &origin)
                .build()
                .unwrap();
        }
        Mti::REVERSAL_REQUEST => ReversalAttempt::Request,
        Mti::REVERSAL_ADVICE => ReversalAttempt::Advice,
        Mti::REVERSAL_ADVICE_REPEAT => ReversalAttempt::AdviceRepeat,
        other => panic!("{other} is not a follow-up"),
    };
    assert_eq!(
        amount, o.amount.0,
        "a reversal quotes the original's amount"
    );
    MessageBuilder::reversal(attempt, &o, pan, replacement.map(Amount), &origin)
        .build()
        .unwrap()
}

pub fn reversal(original: &Message) -> Message {
    follow_up(
        Mti::REVERSAL_REQUEST,
        original,
        original.amount().unwrap().0,
        None,
    )
}

pub fn echo() -> Message {
    MessageBuilder::network(NetworkCode::Echo, now_de7(), next_stan())
        .build()
        .unwrap()
}

pub fn code(msg: &Message) -> String {
    msg.response_code().unwrap().as_str().to_owned()
}

pub fn frame(body: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    out.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    out
}
