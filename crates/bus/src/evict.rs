//! Evicting a restarted worker's earlier instance from its consumer group. A worker killed
//! without leaving stays a member until its session times out, and until then the group either
//! waits for it or hands it partitions nobody reads. A worker that starts again under the same
//! stable name (`worker.name`, e.g. the pod name) knows its earlier instance is dead, so it asks
//! the group coordinator to remove it (`LeaveGroup` naming its member id, which every worker
//! records in Redis once it joined) before it joins itself.
//!
//! librdkafka has no call for removing another member, so this speaks the two requests
//! (`FindCoordinator` v1 and `LeaveGroup` v3, non-flexible versions every broker since Kafka 2.4
//! answers, tansu included) over a plain TCP connection, as the rest of the bus does.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const FIND_COORDINATOR: i16 = 10;
const LEAVE_GROUP: i16 = 13;
/// Largest answer read.
const MAX_RESPONSE: usize = 1 << 20;

/// Removes `members` from `group`, as `client_id`. Returns those the coordinator removed (one
/// already gone is not). Bounded by `within`; an error leaves the group as it was (the members
/// then time out as before).
pub async fn evict_members(
    brokers: &str,
    group: &str,
    members: &[String],
    client_id: &str,
    within: Duration,
) -> Result<Vec<String>, String> {
    if members.is_empty() {
        return Ok(Vec::new());
    }
    tokio::time::timeout(within, evict(brokers, group, members, client_id))
        .await
        .map_err(|_| format!("no answer from the group coordinator within {within:?}"))?
}

async fn evict(brokers: &str, group: &str, members: &[String], client_id: &str) -> Result<Vec<String>, String> {
    let mut last_error = String::from("no bootstrap server");
    let mut coordinator = None;
    for broker in brokers.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        match Connection::open(broker, client_id).await {
            Ok(mut conn) => match conn.find_coordinator(group).await {
                Ok(address) => {
                    coordinator = Some(address);
                    break;
                }
                Err(e) => last_error = format!("{broker}: {e}"),
            },
            Err(e) => last_error = format!("{broker}: {e}"),
        }
    }
    let address = coordinator.ok_or(last_error)?;
    let mut conn = Connection::open(&address, client_id).await.map_err(|e| format!("coordinator {address}: {e}"))?;
    conn.leave(group, members).await.map_err(|e| format!("LeaveGroup: {e}"))
}

/// One connection to a broker, answering one request at a time.
struct Connection {
    stream: TcpStream,
    client_id: String,
    correlation: i32,
}

impl Connection {
    async fn open(address: &str, client_id: &str) -> std::io::Result<Self> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, client_id: client_id.to_string(), correlation: 0 })
    }

    /// `host:port` of the group's coordinator.
    async fn find_coordinator(&mut self, group: &str) -> Result<String, String> {
        let mut body = Vec::new();
        put_str(&mut body, group);
        body.push(0); // key type: group
        let mut r = self.call(FIND_COORDINATOR, 1, &body).await?;
        let _throttle = r.i32()?;
        let error = r.i16()?;
        let message = r.nullable_str()?;
        if error != 0 {
            return Err(format!("FindCoordinator: error {error} {}", message.unwrap_or_default()));
        }
        let _node = r.i32()?;
        let host = r.str()?;
        let port = r.i32()?;
        Ok(format!("{host}:{port}"))
    }

    /// Removes `members` from `group`; returns those the coordinator removed.
    async fn leave(&mut self, group: &str, members: &[String]) -> Result<Vec<String>, String> {
        let mut body = Vec::new();
        put_str(&mut body, group);
        body.extend_from_slice(&(members.len() as i32).to_be_bytes());
        for member in members {
            put_str(&mut body, member);
            body.extend_from_slice(&(-1i16).to_be_bytes()); // no group.instance.id
        }
        let mut r = self.call(LEAVE_GROUP, 3, &body).await?;
        let _throttle = r.i32()?;
        let error = r.i16()?;
        if error != 0 {
            return Err(format!("LeaveGroup: error {error}"));
        }
        let mut removed = Vec::new();
        for _ in 0..r.len()? {
            let member = r.str()?;
            let _instance = r.nullable_str()?;
            // 25: UNKNOWN_MEMBER_ID, already gone (its session ended meanwhile).
            match r.i16()? {
                0 => removed.push(member),
                25 => {}
                e => return Err(format!("LeaveGroup: error {e} for member {member}")),
            }
        }
        Ok(removed)
    }

    /// Sends one request (header v1) and reads its answer (header v0), returning the body.
    async fn call(&mut self, api_key: i16, version: i16, body: &[u8]) -> Result<Reader, String> {
        self.correlation += 1;
        let mut request = Vec::with_capacity(body.len() + 64);
        request.extend_from_slice(&[0; 4]);
        request.extend_from_slice(&api_key.to_be_bytes());
        request.extend_from_slice(&version.to_be_bytes());
        request.extend_from_slice(&self.correlation.to_be_bytes());
        put_str(&mut request, &self.client_id);
        request.extend_from_slice(body);
        let size = (request.len() - 4) as i32;
        request[..4].copy_from_slice(&size.to_be_bytes());
        let io = |e: std::io::Error| e.to_string();
        self.stream.write_all(&request).await.map_err(io)?;
        let size = self.stream.read_i32().await.map_err(io)?;
        let size = usize::try_from(size).ok().filter(|s| (4..=MAX_RESPONSE).contains(s)).ok_or("bad response size")?;
        let mut answer = vec![0; size];
        self.stream.read_exact(&mut answer).await.map_err(io)?;
        let mut r = Reader { bytes: answer, at: 0 };
        if r.i32()? != self.correlation {
            return Err("response out of order".into());
        }
        Ok(r)
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Reads the big-endian fields of an answer; running off its end is an error.
struct Reader {
    bytes: Vec<u8>,
    at: usize,
}

impl Reader {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.bytes.len()).ok_or("truncated response")?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().map_err(|_| "i16")?))
    }

    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().map_err(|_| "i32")?))
    }

    /// An array's element count (a null array counts as empty).
    fn len(&mut self) -> Result<usize, String> {
        Ok(usize::try_from(self.i32()?).unwrap_or(0))
    }

    fn nullable_str(&mut self) -> Result<Option<String>, String> {
        let len = self.i16()?;
        let Ok(len) = usize::try_from(len) else { return Ok(None) };
        Ok(Some(String::from_utf8_lossy(self.take(len)?).into_owned()))
    }

    fn str(&mut self) -> Result<String, String> {
        Ok(self.nullable_str()?.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_length_prefixed_and_null_is_minus_one() {
        let mut out = Vec::new();
        put_str(&mut out, "g1");
        out.extend_from_slice(&(-1i16).to_be_bytes());
        let mut r = Reader { bytes: out, at: 0 };
        assert_eq!(r.str().unwrap(), "g1");
        assert_eq!(r.nullable_str().unwrap(), None);
        assert!(r.i16().is_err(), "reading past the end is an error, not a panic");
    }

    #[test]
    fn a_truncated_answer_is_an_error() {
        let mut r = Reader { bytes: vec![0, 9, b'a'], at: 0 };
        assert_eq!(r.str().unwrap_err(), "truncated response");
    }
}
