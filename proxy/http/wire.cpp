#include "http/wire.hpp"

namespace cacheproxy::http {

namespace {

void append_version(unsigned version, std::string& out) {
    out.append("HTTP/");
    out.push_back(static_cast<char>('0' + version / 10));
    out.push_back('.');
    out.push_back(static_cast<char>('0' + version % 10));
}

template <class Fields>
void append_fields(const Fields& fields, std::string& out) {
    for (const auto& f : fields) {
        out.append(f.name_string());
        out.append(": ");
        out.append(f.value());
        out.append("\r\n");
    }
    out.append("\r\n");
}

}  // namespace

void append_head(const http::RequestHeader& req, std::string& out) {
    out.append(req.method_string());
    out.push_back(' ');
    out.append(req.target());
    out.push_back(' ');
    append_version(req.version(), out);
    out.append("\r\n");
    append_fields(req, out);
}

void append_head(const http::ResponseHeader& res, std::string& out) {
    append_version(res.version(), out);
    const unsigned code = res.result_int();
    const char status[5] = {' ', static_cast<char>('0' + code / 100 % 10), static_cast<char>('0' + code / 10 % 10),
                            static_cast<char>('0' + code % 10), ' '};
    out.append(status, sizeof status);
    out.append(res.reason());
    out.append("\r\n");
    append_fields(res, out);
}

}  // namespace cacheproxy::http
