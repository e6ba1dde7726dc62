//! A minimal Redis client (RESP2 over one TCP connection): the registry needs only GET and
//! two Lua scripts (EVAL), so a hundred lines replace the `redis` crate and its URL/IDNA
//! dependency tree. Every call has a deadline and every reply a byte budget.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

use crate::config::cluster::RedisAddr;

/// Largest bulk string or array we accept in a reply (ours are a few hundred bytes).
const MAX_REPLY: usize = 1 << 20;

/// A failed Redis call.
#[derive(Debug, thiserror::Error)]
pub enum RespError {
    /// Connecting, writing or reading failed.
    #[error("redis I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The call did not finish within `cluster.redis_timeout`.
    #[error("redis call timed out")]
    Timeout,
    /// Redis answered with an error.
    #[error("redis error: {0}")]
    Server(String),
    /// The reply was not RESP2 or was over budget.
    #[error("bad redis reply: {0}")]
    Protocol(&'static str),
}

/// One RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `$-1` or `*-1`.
    Nil,
    /// `+OK` and the like.
    Status(String),
    /// `-ERR …`.
    Error(String),
    /// `:n`.
    Int(i64),
    /// `$n` bytes.
    Bulk(Vec<u8>),
    /// `*n` values.
    Array(Vec<Value>),
}

/// One connection to Redis.
#[derive(Debug)]
pub struct Conn {
    io: BufStream<TcpStream>,
    timeout: Duration,
}

impl Conn {
    /// Connects, authenticates and selects the database, within `timeout`.
    pub async fn connect(addr: &RedisAddr, timeout: Duration) -> Result<Conn, RespError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(&addr.host_port))
            .await
            .map_err(|_| RespError::Timeout)??;
        stream.set_nodelay(true)?;
        let mut conn = Conn {
            io: BufStream::new(stream),
            timeout,
        };
        if let Some(password) = &addr.password {
            conn.call(&[b"AUTH", password.as_bytes()]).await?;
        }
        if addr.db != 0 {
            conn.call(&[b"SELECT", addr.db.to_string().as_bytes()])
                .await?;
        }
        Ok(conn)
    }

    /// Sends one command and reads its reply, within the connection's timeout. After an
    /// error the connection must be dropped (a reply may be left half-read).
    pub async fn call(&mut self, args: &[&[u8]]) -> Result<Value, RespError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, async {
            self.io.write_all(&encode(args)).await?;
            self.io.flush().await?;
            match read_value(&mut self.io, 0).await? {
                Value::Error(e) => Err(RespError::Server(e)),
                v => Ok(v),
            }
        })
        .await
        .map_err(|_| RespError::Timeout)?
    }
}

/// A command as a RESP array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

async fn read_line(io: &mut BufStream<TcpStream>) -> Result<String, RespError> {
    let mut line = Vec::with_capacity(32);
    // Bounded: a line longer than the budget is a protocol error, not a memory sink.
    let n = (&mut *io)
        .take(MAX_REPLY as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Err(RespError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    if !line.ends_with(b"\r\n") {
        return Err(RespError::Protocol("line without CRLF"));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| RespError::Protocol("line is not UTF-8"))
}

/// Reads one value (boxed: arrays recurse).
fn read_value(
    io: &mut BufStream<TcpStream>,
    depth: u8,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, RespError>> + Send + '_>> {
    Box::pin(async move {
        if depth > 4 {
            return Err(RespError::Protocol("nested too deep"));
        }
        let line = read_line(io).await?;
        let (kind, rest) = line.split_at(line.len().min(1));
        let number = || {
            rest.parse::<i64>()
                .map_err(|_| RespError::Protocol("bad length or integer"))
        };
        match kind {
            "+" => Ok(Value::Status(rest.to_string())),
            "-" => Ok(Value::Error(rest.to_string())),
            ":" => Ok(Value::Int(number()?)),
            "$" => {
                let n = number()?;
                if n < 0 {
                    return Ok(Value::Nil);
                }
                let n = usize::try_from(n).map_err(|_| RespError::Protocol("length"))?;
                if n > MAX_REPLY {
                    return Err(RespError::Protocol("bulk string over budget"));
                }
                let mut buf = vec![0; n + 2];
                io.read_exact(&mut buf).await?;
                buf.truncate(n);
                Ok(Value::Bulk(buf))
            }
            "*" => {
                let n = number()?;
                if n < 0 {
                    return Ok(Value::Nil);
                }
                if n > 1024 {
                    return Err(RespError::Protocol("array over budget"));
                }
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(read_value(io, depth + 1).await?);
                }
                Ok(Value::Array(items))
            }
            _ => Err(RespError::Protocol("unknown reply type")),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands() {
        assert_eq!(
            encode(&[b"GET", b"k"]),
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n".to_vec()
        );
    }

    #[tokio::test]
    async fn parses_replies_from_a_fake_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 256];
            let replies: [&[u8]; 4] = [
                b"$5\r\nhello\r\n",
                b"$-1\r\n",
                b"*2\r\n:1\r\n+OK\r\n",
                b"-ERR nope\r\n",
            ];
            for r in replies {
                let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
                s.write_all(r).await.unwrap();
            }
        });
        let a = RedisAddr::parse(&format!("redis://{addr}")).unwrap();
        let mut c = Conn::connect(&a, Duration::from_secs(2)).await.unwrap();
        assert_eq!(
            c.call(&[b"GET", b"a"]).await.unwrap(),
            Value::Bulk(b"hello".to_vec())
        );
        assert_eq!(c.call(&[b"GET", b"b"]).await.unwrap(), Value::Nil);
        assert_eq!(
            c.call(&[b"X"]).await.unwrap(),
            Value::Array(vec![Value::Int(1), Value::Status("OK".into())])
        );
        assert!(matches!(c.call(&[b"X"]).await, Err(RespError::Server(e)) if e == "ERR nope"));
    }
}
