#pragma once
/// gzip (RFC 1952) over zlib: one-shot and streaming, both ways.
///
/// Nothing here throws: every function is noexcept and reports any failure
/// (a zlib error, corrupt input, an output cap, an allocation failure) as
/// `false`, so the caller can fall back to the identity body. zlib's header
/// stays out of this one: the z_stream lives on the heap (zlib's state points
/// back at it, so it must not move), which is also what makes the streams movable.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct z_stream_s;  // zlib's z_stream

namespace cacheproxy::encoding {

/// zlib's own default (Z_DEFAULT_COMPRESSION is level 6).
inline constexpr int kDefaultLevel = 6;

/// True for the levels zlib takes: 0 (stored) .. 9, or -1 (zlib's default, 6).
bool valid_level(int level) noexcept;

/// Compresses `in` into one gzip member (deflateInit2: windowBits 15+16,
/// memLevel 8, default strategy). On success `out` holds exactly the member
/// (its previous contents are replaced; its capacity is reused). False on an
/// invalid level or any zlib or allocation failure; `out` is then empty.
bool gzip_compress(std::string_view in, int level, std::string& out) noexcept;

/// Decompresses a whole gzip body: one member or several concatenated ones
/// (RFC 1952 2.2). On success `out` holds exactly the decoded bytes (previous
/// contents replaced). False on a zlib error, a truncated stream, bytes after
/// the last member that are not another member, an empty input, or when the
/// decoded body would exceed `max_out` bytes (the zip-bomb guard: decoding
/// stops there, it does not run to the end first); `out` is then empty.
bool gzip_decompress(std::string_view in, std::string& out, std::size_t max_out) noexcept;

/// What a streaming write does after consuming its input.
enum class Flush {
    none,  ///< let zlib buffer (best ratio; output comes in bursts)
    sync,  ///< Z_SYNC_FLUSH: everything written so far becomes decodable now,
           ///< at the cost of a few bytes and some ratio per flush
};

struct DeflateDeleter {
    void operator()(z_stream_s* s) const noexcept;
};
struct InflateDeleter {
    void operator()(z_stream_s* s) const noexcept;
};

/// Streaming gzip compressor for bodies that are never held whole (pass-through,
/// chunked). Usage: write() each piece, appending to a buffer that is sent and
/// cleared; finish() once at the end. One z_stream for its whole life; reset()
/// reuses it for another body. Non-copyable, movable; a moved-from stream is !ok().
class GzipStream {
public:
    /// An invalid level, or a zlib allocation failure, makes a stream that is !ok().
    explicit GzipStream(int level = kDefaultLevel) noexcept;
    ~GzipStream() = default;
    GzipStream(GzipStream&&) noexcept = default;
    GzipStream& operator=(GzipStream&&) noexcept = default;
    GzipStream(const GzipStream&) = delete;
    GzipStream& operator=(const GzipStream&) = delete;

    /// True when the stream can take more input: initialised, not failed, not finished.
    bool ok() const noexcept { return stream_ && state_ == State::open; }

    /// Compresses `in`, appending whatever compressed bytes are ready to `out`
    /// (maybe none with Flush::none). With Flush::sync, the bytes appended so
    /// far decode to every byte written so far. False when !ok() or on failure;
    /// `out` is then left as it was and the stream is failed.
    bool write(std::string_view in, std::string& out, Flush flush = Flush::none) noexcept;

    /// write({}, out, Flush::sync).
    bool flush(std::string& out) noexcept { return write({}, out, Flush::sync); }

    /// Appends the rest of the stream and the gzip trailer (CRC-32, size) to
    /// `out`. After it the stream is no longer ok() until reset(). False when
    /// !ok() or on failure (`out` left as it was).
    bool finish(std::string& out) noexcept;

    /// Starts a new gzip stream with the same level on the same z_stream (no
    /// reallocation). False when the stream was never initialised or was moved from.
    bool reset() noexcept;

    /// Uncompressed bytes consumed and compressed bytes produced since the last reset.
    std::uint64_t total_in() const noexcept;
    std::uint64_t total_out() const noexcept;

private:
    enum class State { open, finished, failed };
    std::unique_ptr<z_stream_s, DeflateDeleter> stream_;
    State state_ = State::failed;
};

/// Streaming gzip decompressor, for an upstream's gzip body sent to a client
/// that does not accept gzip. Accepts concatenated members. Non-copyable,
/// movable; a moved-from stream is !ok().
class GunzipStream {
public:
    GunzipStream() noexcept;
    ~GunzipStream() = default;
    GunzipStream(GunzipStream&&) noexcept = default;
    GunzipStream& operator=(GunzipStream&&) noexcept = default;
    GunzipStream(const GunzipStream&) = delete;
    GunzipStream& operator=(const GunzipStream&) = delete;

    /// True when initialised and not failed.
    bool ok() const noexcept { return stream_ && !failed_; }

    /// Decodes `in`, appending all the bytes it yields to `out`. False (and
    /// the stream failed, `out` left as it was) on corrupt input, on bytes
    /// after a member that are not a new member, or when this call alone would
    /// append more than `max_out` bytes: a zip-bomb guard per piece (track
    /// total_out() for a per-body cap).
    bool write(std::string_view in, std::string& out, std::size_t max_out) noexcept;

    /// True when the input so far is one or more complete members with valid
    /// trailers: the body ended cleanly. False for a truncated stream, a failed
    /// stream, or no input at all (an empty body is not gzip: a caller handles
    /// empty bodies, e.g. HEAD/204/304, before decoding).
    bool finish() const noexcept { return ok() && member_ended_; }

    /// Starts over for another body on the same z_stream.
    bool reset() noexcept;

    /// Compressed bytes consumed and decoded bytes produced since the last reset
    /// (across members).
    std::uint64_t total_in() const noexcept { return total_in_; }
    std::uint64_t total_out() const noexcept { return total_out_; }

private:
    std::unique_ptr<z_stream_s, InflateDeleter> stream_;
    bool failed_ = true;
    bool member_ended_ = false;  ///< the last member ended and no byte of another arrived
    std::uint64_t total_in_ = 0;
    std::uint64_t total_out_ = 0;
};

}  // namespace cacheproxy::encoding
