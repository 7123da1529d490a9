/// Accept-Encoding negotiation and Content-Encoding classification
/// (proxy/encoding/accept_encoding.hpp).
///
/// Input: the field lines of one Accept-Encoding header, separated by '\n'
/// (one line = one field line); the whole input is also read as one
/// Content-Encoding value and as one qvalue. Asserted:
///  - the weights are qvalues (0..1000) and negotiate() follows them exactly
///    as documented; accepts_gzip() is negotiate() == gzip; the one-value
///    form equals the field-line form of one line; an absent header is identity;
///  - field lines are one comma-separated list (RFC 9110 5.3): the lines
///    joined with ',' weigh the same as the lines;
///  - the list is a set: the members in reverse order weigh the same;
///  - codings and parameter names are case-insensitive: the value upper-cased
///    (or lower-cased) weighs the same; OWS after ',' and around ';' changes nothing;
///  - `gzip;q=0` appended always refuses gzip; `identity;q=0` + `*;q=0` appended
///    never leaves identity chosen;
///  - parse_qvalue reads back its own canonical spelling;
///  - applied_coding is case-insensitive and only says gzip for a value naming gzip.

#include "encoding/accept_encoding.hpp"
#include "fuzz_common.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

using namespace cacheproxy::encoding;

namespace {

bool same(const Weights& a, const Weights& b) {
    return a.gzip == b.gzip && a.identity == b.identity && a.identity_listed == b.identity_listed;
}

Weights weigh_one(std::string_view v) { return weigh(std::span<const std::string_view>(&v, 1)); }

std::string map_ascii(std::string_view s, bool upper) {
    std::string out(s);
    for (char& c : out) {
        if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    for (;;) {
        const auto at = s.find(sep);
        out.push_back(s.substr(0, at));
        if (at == std::string_view::npos) return out;
        s.remove_prefix(at + 1);
    }
}

/// Whether `s` holds a quoted string: members and parameters are then not a
/// plain split on ',' / ';' (the negotiation does not read quoted parameter
/// values; only the reorderings below assume it need not).
bool has_quote(std::string_view s) { return s.find('"') != std::string_view::npos; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const std::vector<std::string_view> lines = split(in, '\n');
    const std::span<const std::string_view> span(lines);

    const Weights w = weigh(span);
    FUZZ_CHECK(w.gzip >= 0 && w.gzip <= kQMax);
    FUZZ_CHECK(w.identity >= 0 && w.identity <= kQMax);
    if (!w.identity_listed) FUZZ_CHECK(w.identity == kQMax);  // RFC 9110 12.5.3 rule 2

    const Coding c = negotiate(span);
    Coding expected = Coding::none;
    if (w.gzip > 0 && (!w.identity_listed || w.gzip >= w.identity))
        expected = Coding::gzip;
    else if (w.identity > 0)
        expected = Coding::identity;
    FUZZ_CHECK(c == expected, in);
    FUZZ_CHECK(accepts_gzip(span) == (c == Coding::gzip));
    FUZZ_CHECK(negotiate(in, false) == Coding::identity);
    FUZZ_CHECK(!accepts_gzip(in, false));
    FUZZ_CHECK(negotiate(std::span<const std::string_view>{}) == Coding::identity);
    if (lines.size() == 1) {
        FUZZ_CHECK(negotiate(in, true) == c);
        FUZZ_CHECK(accepts_gzip(in, true) == (c == Coding::gzip));
    }

    // Field lines are one list.
    std::string joined;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (i) joined.push_back(',');
        joined.append(lines[i]);
    }
    FUZZ_CHECK(same(weigh_one(joined), w), in);
    FUZZ_CHECK(negotiate(joined, true) == c, in);

    // Case.
    FUZZ_CHECK(same(weigh_one(map_ascii(joined, true)), w), in);
    FUZZ_CHECK(same(weigh_one(map_ascii(joined, false)), w), in);

    if (!has_quote(joined)) {
        // A set: reversed member order.
        auto members = split(joined, ',');
        std::reverse(members.begin(), members.end());
        std::string reversed;
        for (std::size_t i = 0; i < members.size(); ++i) {
            if (i) reversed.push_back(',');
            reversed.append(members[i]);
        }
        FUZZ_CHECK(same(weigh_one(reversed), w), in);

        // OWS after ',' and around ';' (a member's own edges are trimmed).
        std::string spaced;
        for (char ch : joined) {
            if (ch == ',') {
                spaced += ", \t";
            } else if (ch == ';') {
                spaced += " ; ";
            } else {
                spaced.push_back(ch);
            }
        }
        FUZZ_CHECK(same(weigh_one(spaced), w), in);
    }

    // Refusals added at the end win.
    FUZZ_CHECK(negotiate(joined + ", gzip;q=0", true) != Coding::gzip, in);
    FUZZ_CHECK(negotiate(joined + ", x-gzip;q=0", true) != Coding::gzip, in);
    FUZZ_CHECK(negotiate(joined + ",identity;q=0,*;q=0", true) != Coding::identity, in);

    // qvalues.
    if (const auto q = parse_qvalue(in)) {
        FUZZ_CHECK(*q >= 0 && *q <= kQMax, in);
        FUZZ_CHECK(size <= 5);
        char canon[8];
        if (*q == kQMax)
            std::snprintf(canon, sizeof canon, "1");
        else
            std::snprintf(canon, sizeof canon, "0.%03d", *q);
        FUZZ_CHECK(parse_qvalue(canon) == q, in);
        FUZZ_CHECK(negotiate(std::string("gzip;q=") + canon, true) == (*q > 0 ? Coding::gzip : Coding::identity));
    }

    // Content-Encoding.
    const Applied applied = applied_coding(in);
    FUZZ_CHECK(applied_coding(map_ascii(in, true)) == applied, in);
    if (applied == Applied::gzip) FUZZ_CHECK(map_ascii(in, false).find("gzip") != std::string::npos, in);
    if (applied == Applied::identity) {
        // Only empty elements and "identity" in it.
        for (auto member : split(in, ',')) {
            while (!member.empty() && (member.front() == ' ' || member.front() == '\t')) member.remove_prefix(1);
            while (!member.empty() && (member.back() == ' ' || member.back() == '\t')) member.remove_suffix(1);
            FUZZ_CHECK(member.empty() || map_ascii(member, false) == "identity", in);
        }
    }
    return 0;
}
