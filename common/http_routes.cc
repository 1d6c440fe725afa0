#include "common/http_routes.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace sluice {

std::string HttpRequest::get_header_value(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

std::string HttpRequest::get_param_value(const std::string& key, size_t i) const {
  auto [begin, end] = params.equal_range(key);
  for (auto it = begin; it != end; ++it, --i) {
    if (i == 0) return it->second;
  }
  return "";
}

bool HttpRoutes::Admit(HttpRequest& req, HttpResponse& res) const {
  if (pre_routing_) pre_routing_(req);
  if (guard_ && !guard_(req, res)) {
    Refuse(req, res);
    return false;
  }
  return true;
}

void HttpRoutes::Serve(HttpRequest& req, HttpResponse& res, bool parse_forms) const {
  try {
    absl::Status parsed = ParseTarget(req.target, &req.path, &req.params);
    const std::string type = req.get_header_value("Content-Type");
    if (parsed.ok() && parse_forms) {
      if (absl::StartsWithIgnoreCase(type, "multipart/form-data")) {
        parsed = ParseMultipartFormData(type, req.body, &req.files);
      } else if (absl::StartsWithIgnoreCase(type, "application/x-www-form-urlencoded")) {
        // A form of a few fields, not a way to fill memory with params.
        if (req.body.size() > kMaxFormBytes) {
          res.status = 413;
          res.reason =
              absl::StrCat("a form-urlencoded body may have at most ", kMaxFormBytes, " bytes");
          Refuse(req, res);
          return;
        }
        parsed = ParseQuery(req.body, &req.params);
      }
    }
    if (!parsed.ok()) {
      res.status = 400;
      res.reason = std::string(parsed.message());
      Refuse(req, res);
      return;
    }
    Handle(req, res);
  } catch (const std::exception& e) {
    res = HttpResponse();
    res.status = 500;
    res.reason = e.what();
    Refuse(req, res);  // throws nothing
  } catch (...) {
    res = HttpResponse();
    res.status = 500;
    Refuse(req, res);
  }
}

void HttpRoutes::Handle(HttpRequest& req, HttpResponse& res) const {
  if (!Admit(req, res)) return;
  const std::string& method = req.method == "HEAD" ? std::string("GET") : req.method;
  const Route* route = nullptr;
  std::smatch m;
  for (const Route& r : routes_) {
    if (r.method == method && std::regex_match(req.path, m, r.pattern)) {
      route = &r;
      break;
    }
  }
  if (route == nullptr) {
    res.status = 404;
  } else {
    req.matches.clear();
    for (const auto& group : m) req.matches.push_back(group.str());
    try {
      route->handler(req, res);
    } catch (...) {
      res = HttpResponse();
      res.status = 500;
      if (exception_handler_) exception_handler_(req, res, std::current_exception());
    }
  }
  Refuse(req, res);
}

void HttpRoutes::Refuse(const HttpRequest& req, HttpResponse& res) const {
  if (res.status >= 400 && res.body.empty() && error_handler_) {
    try {
      error_handler_(req, res);
    } catch (...) {
      // An answer without a body is still an answer.
      res.body.clear();
      res.content_type.clear();
    }
  }
}

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The value of parameter `key` in a header value such as `form-data; name="jarfile"`, unquoted;
// "" when absent.
std::string HeaderParameter(absl::string_view value, absl::string_view key) {
  size_t i = 0;
  while (i < value.size()) {
    // One parameter: a name, '=', and a token or a quoted string (';' inside quotes is text).
    size_t semicolon = i;
    bool quoted = false;
    for (; semicolon < value.size(); ++semicolon) {
      char c = value[semicolon];
      if (quoted && c == '\\') {
        ++semicolon;
      } else if (c == '"') {
        quoted = !quoted;
      } else if (c == ';' && !quoted) {
        break;
      }
    }
    absl::string_view p = absl::StripAsciiWhitespace(value.substr(i, semicolon - i));
    i = semicolon + 1;
    size_t eq = p.find('=');
    if (eq == absl::string_view::npos) continue;
    if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(p.substr(0, eq)), key)) continue;
    absl::string_view v = absl::StripAsciiWhitespace(p.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
      std::string out;
      for (size_t j = 1; j + 1 < v.size(); ++j) {
        if (v[j] == '\\' && j + 2 < v.size()) ++j;
        out.push_back(v[j]);
      }
      return out;
    }
    return std::string(v);
  }
  return "";
}

}  // namespace

std::string PercentDecode(const std::string& s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexDigit(s[i + 1]) >= 0 && HexDigit(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexDigit(s[i + 1]) * 16 + HexDigit(s[i + 2])));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

absl::Status ParseQuery(std::string_view query, std::multimap<std::string, std::string>* params) {
  size_t count = 0;
  for (absl::string_view kv :
       absl::StrSplit(absl::string_view(query.data(), query.size()), '&', absl::SkipEmpty())) {
    if (++count > kMaxParams) {
      return absl::InvalidArgumentError(
          absl::StrCat("the request has more than ", kMaxParams, " parameters"));
    }
    size_t eq = kv.find('=');
    std::string key(kv.substr(0, eq));
    std::string value(eq == absl::string_view::npos ? "" : kv.substr(eq + 1));
    params->emplace(PercentDecode(key, true), PercentDecode(value, true));
  }
  return absl::OkStatus();
}

absl::Status ParseTarget(const std::string& target, std::string* path,
                         std::multimap<std::string, std::string>* params) {
  if (target.empty() || target[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("the request target '", target.substr(0, 100), "' is not a path"));
  }
  size_t q = target.find('?');
  *path = PercentDecode(target.substr(0, q), /*plus_is_space=*/false);
  params->clear();
  if (q == std::string::npos) return absl::OkStatus();
  std::string_view query(target);
  query.remove_prefix(q + 1);
  if (size_t hash = query.find('#'); hash != std::string_view::npos) query = query.substr(0, hash);
  return ParseQuery(query, params);
}

absl::Status ParseMultipartFormData(const std::string& content_type, const std::string& body,
                                    std::multimap<std::string, HttpFormPart>* parts) {
  parts->clear();
  const std::string boundary = HeaderParameter(content_type, "boundary");
  if (boundary.empty() || boundary.size() > 200) {
    return absl::InvalidArgumentError(
        "the multipart/form-data body's Content-Type names no boundary (or one over 200 bytes)");
  }
  const std::string delimiter = "--" + boundary;
  size_t pos = body.find(delimiter);
  if (pos == std::string::npos) {
    return absl::InvalidArgumentError("the multipart/form-data body has no part");
  }
  absl::string_view rest(body);
  rest.remove_prefix(pos + delimiter.size());
  const std::string next_delimiter = "\r\n" + delimiter;
  for (;;) {
    if (absl::ConsumePrefix(&rest, "--")) return absl::OkStatus();  // the closing delimiter
    // Transport padding, then the line end.
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    if (!absl::ConsumePrefix(&rest, "\r\n")) {
      return absl::InvalidArgumentError("a multipart/form-data boundary is not followed by CRLF");
    }
    size_t header_end = rest.find("\r\n\r\n");
    size_t content_start;
    absl::string_view header_block;
    if (absl::StartsWith(rest, "\r\n")) {  // a part without headers
      content_start = 2;
    } else if (header_end == absl::string_view::npos) {
      return absl::InvalidArgumentError("a multipart/form-data part's headers do not end");
    } else {
      header_block = rest.substr(0, header_end);
      content_start = header_end + 4;
    }
    HttpFormPart part;
    for (absl::string_view line : absl::StrSplit(header_block, "\r\n", absl::SkipEmpty())) {
      size_t colon = line.find(':');
      if (colon == absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat(
            "a multipart/form-data part has a malformed header line '", line.substr(0, 100), "'"));
      }
      absl::string_view name = absl::StripAsciiWhitespace(line.substr(0, colon));
      absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
      if (absl::EqualsIgnoreCase(name, "Content-Disposition")) {
        part.name = HeaderParameter(value, "name");
        part.filename = HeaderParameter(value, "filename");
      } else if (absl::EqualsIgnoreCase(name, "Content-Type")) {
        part.content_type = std::string(value);
      }
    }
    rest.remove_prefix(content_start);
    size_t end = rest.find(next_delimiter);
    if (end == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          "the multipart/form-data body ends inside a part (no closing boundary)");
    }
    part.content = std::string_view(rest.data(), end);
    rest.remove_prefix(end + next_delimiter.size());
    if (parts->size() >= kMaxParts) {
      return absl::InvalidArgumentError(
          absl::StrCat("the multipart/form-data body has more than ", kMaxParts, " parts"));
    }
    std::string key = part.name;
    parts->emplace(std::move(key), std::move(part));
  }
}

}  // namespace sluice
