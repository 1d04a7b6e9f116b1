//! A plain ISO 8583 acquirer over mutual TLS (no link: no pool, no reversals of its own) and
//! request builders through `iso8583::kinds`, as the link builds them, enough to drive the
//! simulator the way an acquirer would, and to send it what no well-behaved acquirer sends.
//!
//! Owns the test acquirer's identity (DE 32, 41, 42) and its STAN sequence. Never reads a
//! response with a deadline longer than [`GUARD`], and never holds a PAN beyond the message.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use iso8583::{
    Amount, CardRequest, Condition, EntryMode, FrameCodec, Message, MessageBuilder, Mti,
    NetworkCode, Origin, Original, ProcessingCode, ReversalAttempt, Rrn, Stan, TransmissionTime,
};
use simulator::DevPki;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::codec::Framed;

use crate::GUARD;

/// DE 32 of this test acquirer.
pub const ACQUIRER: &[u8] = b"123456";

/// A mutual-TLS connection to the simulator's ISO 8583 listener at `addr`, as the acquirer whose
/// certificate `pki` issued, with Nagle off (requests are small and pipelined).
pub async fn tls_connect(addr: SocketAddr, pki: &DevPki) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::try_from("localhost")
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let config = pki
        .client_config()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    TlsConnector::from(config).connect(name, tcp).await
}

/// One TLS connection speaking length-prefixed ISO 8583.
#[derive(Debug)]
pub struct IsoClient {
    /// The framed stream, for tests that send or read frames their own way.
    pub framed: Framed<TlsStream<TcpStream>, FrameCodec>,
}

impl IsoClient {
    /// Connects and completes the TLS handshake ([`tls_connect`]).
    pub async fn connect(addr: SocketAddr, pki: &DevPki) -> std::io::Result<IsoClient> {
        Ok(IsoClient {
            framed: Framed::new(tls_connect(addr, pki).await?, FrameCodec),
        })
    }

    /// Sends one message, framed.
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

    /// Sends `msg` and returns the next message, which must answer it (same STAN).
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

/// The next STAN of this process's test acquirer: unique across its connections, so that no two
/// requests of one test are taken for duplicates.
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

/// A 0100/0200 like [`payment`] with its processing code and expiry (DE 14, `YYMM`) chosen.
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

/// A 0400 of the whole of `original`.
pub fn reversal(original: &Message) -> Message {
    follow_up(
        Mti::REVERSAL_REQUEST,
        original,
        original.amount().unwrap().0,
        None,
    )
}

/// A network-management echo test (0800/301).
pub fn echo() -> Message {
    MessageBuilder::network(NetworkCode::Echo, now_de7(), next_stan())
        .build()
        .unwrap()
}

/// DE 39 of a response, as text (`"00"`, `"N7"`); panics on a message without one.
pub fn code(msg: &Message) -> String {
    msg.response_code().unwrap().as_str().to_owned()
}

/// `body` behind the 2-byte big-endian length header, for tests that write raw frames.
pub fn frame(body: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    out.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    out
}
