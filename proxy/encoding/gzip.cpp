#include "encoding/gzip.hpp"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <new>

namespace cacheproxy::encoding {

namespace {

constexpr int kGzipWindowBits = 15 + 16;  // 32 KiB window, gzip wrapper
constexpr int kMemLevel = 8;
/// zlib counts in uInt: feed and drain at most this much per call.
constexpr std::size_t kMaxChunk = std::size_t{1} << 30;
/// Below this much free output space, grow before calling zlib (a sync flush
/// wants more than 6 bytes).
constexpr std::size_t kMinFree = 64;
/// Largest possible deflate expansion ratio (RFC 1951 blocks cap it near 1032:1).
constexpr std::size_t kMaxRatio = 1032;

Bytef* in_ptr(const char* p) { return reinterpret_cast<Bytef*>(const_cast<char*>(p)); }
Bytef* out_ptr(std::string& s, std::size_t at) { return reinterpret_cast<Bytef*>(s.data() + at); }

/// Feeds the next piece of [p, p+left) to zlib when it has consumed the last.
void feed(z_stream& s, const char*& p, std::size_t& left) {
    if (s.avail_in != 0 || left == 0) return;
    const std::size_t n = std::min(left, kMaxChunk);
    s.next_in = in_ptr(p);
    s.avail_in = static_cast<uInt>(n);
    p += n;
    left -= n;
}

/// Points zlib at out[used, out.size()).
void aim(z_stream& s, std::string& out, std::size_t used) {
    s.next_out = out_ptr(out, used);
    s.avail_out = static_cast<uInt>(std::min(out.size() - used, kMaxChunk));
}

/// Runs deflate over `in` with `flush` (Z_NO_FLUSH, Z_SYNC_FLUSH or Z_FINISH),
/// appending its output to `out`. On failure `out` is cut back to its size on
/// entry. May throw std::bad_alloc / std::length_error (from growing `out`).
bool pump_deflate(z_stream& s, std::string_view in, int flush, std::string& out) {
    const std::size_t start = out.size();
    std::size_t used = start;
    const char* p = in.data();
    std::size_t left = in.size();
    s.avail_in = 0;
    bool ok = false;
    for (;;) {
        feed(s, p, left);
        const int f = left > 0 ? Z_NO_FLUSH : flush;  // flush only once all input is in zlib's hands
        if (out.size() - used < kMinFree) {
            const std::size_t hint = deflateBound(&s, static_cast<uLong>(s.avail_in + left));
            out.resize(used + std::max<std::size_t>({hint, kMinFree, (used - start) / 2}));
        }
        aim(s, out, used);
        const uInt room = s.avail_out;
        const int rc = deflate(&s, f);
        used += room - s.avail_out;
        if (rc == Z_STREAM_ERROR) break;
        if (f == Z_FINISH) {
            if (rc == Z_STREAM_END) {
                ok = true;
                break;
            }
            if (rc == Z_BUF_ERROR && s.avail_out != 0) break;  // no progress with room to spare: stuck
            continue;
        }
        // Not finishing: done once all input is consumed and zlib did not fill the buffer
        // (a full buffer may mean more output is pending). Z_BUF_ERROR here only means
        // "nothing to do" (e.g. a second sync flush with no new input).
        if (left == 0 && s.avail_in == 0 && s.avail_out != 0) {
            ok = rc == Z_OK || rc == Z_BUF_ERROR;
            break;
        }
    }
    s.next_in = nullptr;
    s.avail_in = 0;
    out.resize(ok ? used : start);
    return ok;
}

/// Result of one inflate pump.
enum class Inflated { ok, error, over_cap };

/// Runs inflate over `in`, appending at most `max_out` bytes to `out`;
/// concatenated members are followed by an inflateReset. `member_ended` tells,
/// on entry, whether the previous member ended (so new bytes start a new one)
/// and, on exit, whether the input ended exactly at a member's end. `size_hint`
/// is the expected output size, 0 when unknown. On failure `out` is cut back.
/// May throw std::bad_alloc / std::length_error.
Inflated pump_inflate(z_stream& s, std::string_view in, std::string& out, std::size_t max_out, bool& member_ended,
                      std::uint64_t& total_in, std::uint64_t& total_out, std::size_t size_hint) {
    const std::size_t start = out.size();
    // One byte beyond the cap, so that reaching it proves the cap was exceeded.
    const std::size_t cap = max_out >= out.max_size() - start ? out.max_size() - start : max_out + 1;
    std::size_t used = start;
    const char* p = in.data();
    std::size_t left = in.size();
    s.avail_in = 0;
    Inflated result = Inflated::ok;
    bool pending = false;  // the last call filled the buffer: more output may be waiting in zlib
    for (;;) {
        feed(s, p, left);
        if (s.avail_in == 0 && !pending) break;  // all input consumed, all output drained
        if (member_ended) {
            if (inflateReset(&s) != Z_OK) {
                result = Inflated::error;
                break;
            }
            member_ended = false;
        }
        if (out.size() - used == 0) {
            const std::size_t produced = used - start;
            if (produced >= cap) {
                result = Inflated::over_cap;
                break;
            }
            std::size_t want = produced == 0 && size_hint != 0
                                   ? size_hint
                                   : std::max<std::size_t>({std::size_t{16384}, (s.avail_in + left) * 4, produced});
            want = std::min(want, cap - produced);
            out.resize(used + want);
        }
        aim(s, out, used);
        const uInt before_in = s.avail_in;
        const uInt room = s.avail_out;
        const int rc = inflate(&s, Z_NO_FLUSH);
        used += room - s.avail_out;
        total_in += before_in - s.avail_in;
        pending = s.avail_out == 0 && rc != Z_STREAM_END;
        if (used - start > max_out) {
            result = Inflated::over_cap;
            break;
        }
        if (rc == Z_STREAM_END) {
            member_ended = true;
            continue;  // more input starts the next member
        }
        if (rc == Z_OK) continue;
        if (rc == Z_BUF_ERROR && s.avail_out == 0) continue;  // needs room: grown above
        if (rc == Z_BUF_ERROR && s.avail_in == 0) continue;   // needs input: loop feeds or ends
        result = Inflated::error;  // Z_DATA_ERROR, Z_NEED_DICT, Z_MEM_ERROR, Z_STREAM_ERROR
        break;
    }
    s.next_in = nullptr;
    s.avail_in = 0;
    if (result == Inflated::ok) {
        out.resize(used);
        total_out += used - start;
    } else {
        out.resize(start);
    }
    return result;
}

/// A heap z_stream, zero-initialised as zlib wants (zalloc/zfree/opaque = Z_NULL).
z_stream* new_stream() noexcept { return new (std::nothrow) z_stream{}; }

}  // namespace

void DeflateDeleter::operator()(z_stream_s* s) const noexcept {
    deflateEnd(s);
    delete s;
}

void InflateDeleter::operator()(z_stream_s* s) const noexcept {
    inflateEnd(s);
    delete s;
}

bool valid_level(int level) noexcept { return level == Z_DEFAULT_COMPRESSION || (level >= 0 && level <= 9); }

bool gzip_compress(std::string_view in, int level, std::string& out) noexcept {
    out.clear();
    if (!valid_level(level)) return false;
    z_stream s{};
    if (deflateInit2(&s, level, Z_DEFLATED, kGzipWindowBits, kMemLevel, Z_DEFAULT_STRATEGY) != Z_OK) return false;
    bool ok = false;
    try {
        ok = pump_deflate(s, in, Z_FINISH, out);
    } catch (...) {
        out.clear();
    }
    deflateEnd(&s);
    return ok;
}

bool gzip_decompress(std::string_view in, std::string& out, std::size_t max_out) noexcept {
    out.clear();
    if (in.empty()) return false;
    z_stream s{};
    if (inflateInit2(&s, kGzipWindowBits) != Z_OK) return false;
    // A single member's trailer ends with ISIZE, its size mod 2^32: a good first
    // guess at the output size (only a guess: members may be concatenated).
    std::size_t hint = 0;
    if (in.size() >= 18) {
        const auto* t = reinterpret_cast<const unsigned char*>(in.data() + in.size() - 4);
        hint = std::size_t{t[0]} | std::size_t{t[1]} << 8 | std::size_t{t[2]} << 16 | std::size_t{t[3]} << 24;
        if (hint > in.size() * kMaxRatio) hint = 0;
    }
    bool ok = false;
    try {
        bool ended = false;
        std::uint64_t total_in = 0;
        std::uint64_t total_out = 0;
        ok = pump_inflate(s, in, out, max_out, ended, total_in, total_out, hint) == Inflated::ok && ended;
        if (!ok) out.clear();
    } catch (...) {
        out.clear();
    }
    inflateEnd(&s);
    return ok;
}

// ---- GzipStream -----------------------------------------------------------------------------

GzipStream::GzipStream(int level) noexcept {
    if (!valid_level(level)) return;
    z_stream* s = new_stream();
    if (s == nullptr) return;
    if (deflateInit2(s, level, Z_DEFLATED, kGzipWindowBits, kMemLevel, Z_DEFAULT_STRATEGY) != Z_OK) {
        delete s;
        return;
    }
    stream_.reset(s);
    state_ = State::open;
}

bool GzipStream::write(std::string_view in, std::string& out, Flush flush) noexcept {
    if (!ok()) return false;
    if (in.empty() && flush == Flush::none) return true;
    const std::size_t start = out.size();
    bool done = false;
    try {
        done = pump_deflate(*stream_, in, flush == Flush::sync ? Z_SYNC_FLUSH : Z_NO_FLUSH, out);
    } catch (...) {
        out.resize(start);  // growing `out` threw; shrinking never does
    }
    if (!done) state_ = State::failed;
    return done;
}

bool GzipStream::finish(std::string& out) noexcept {
    if (!ok()) return false;
    const std::size_t start = out.size();
    bool done = false;
    try {
        done = pump_deflate(*stream_, {}, Z_FINISH, out);
    } catch (...) {
        out.resize(start);  // shrinking never throws
    }
    state_ = done ? State::finished : State::failed;
    return done;
}

bool GzipStream::reset() noexcept {
    if (!stream_ || deflateReset(stream_.get()) != Z_OK) return false;
    state_ = State::open;
    return true;
}

std::uint64_t GzipStream::total_in() const noexcept { return stream_ ? stream_->total_in : 0; }
std::uint64_t GzipStream::total_out() const noexcept { return stream_ ? stream_->total_out : 0; }

// ---- GunzipStream ---------------------------------------------------------------------------

GunzipStream::GunzipStream() noexcept {
    z_stream* s = new_stream();
    if (s == nullptr) return;
    if (inflateInit2(s, kGzipWindowBits) != Z_OK) {
        delete s;
        return;
    }
    stream_.reset(s);
    failed_ = false;
}

bool GunzipStream::write(std::string_view in, std::string& out, std::size_t max_out) noexcept {
    if (!ok()) return false;
    if (in.empty()) return true;
    const std::size_t start = out.size();
    bool done = false;
    try {
        done = pump_inflate(*stream_, in, out, max_out, member_ended_, total_in_, total_out_, 0) == Inflated::ok;
    } catch (...) {
        out.resize(start);
    }
    if (!done) failed_ = true;
    return done;
}

bool GunzipStream::reset() noexcept {
    if (!stream_ || inflateReset(stream_.get()) != Z_OK) return false;
    failed_ = false;
    member_ended_ = false;
    total_in_ = 0;
    total_out_ = 0;
    return true;
}

}  // namespace cacheproxy::encoding
