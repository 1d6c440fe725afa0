// What an HttpServer (common/http_server.h) hands its routes: a request read whole, a response
// to fill, and the table that picks a handler by method and path pattern. None of it knows the
// network, so it is tested on its own.
#pragma once

#include <exception>
#include <functional>
#include <map>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace sluice {

// One part of a multipart/form-data body.
struct HttpFormPart {
  std::string name;      // the form field
  std::string filename;  // as the client sent it: never a path of ours
  std::string content_type;
  std::string_view content;  // a view into the request's body
};

struct HttpRequest {
  std::string method;                              // "GET", "POST", ...
  std::string target;                              // as sent: the path with its query
  std::string path;                                // the target's path, percent-decoded once
  std::multimap<std::string, std::string> params;  // the query's, decoded
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::multimap<std::string, HttpFormPart> files;  // a multipart/form-data body's parts
  std::string remote_address;
  // The groups of the route's pattern that matched the path; [0] is the whole path.
  std::vector<std::string> matches;

  // Header names compare without case; "" when absent.
  std::string get_header_value(const std::string& name) const;
  bool has_param(const std::string& key) const { return params.count(key) > 0; }
  size_t get_param_value_count(const std::string& key) const { return params.count(key); }
  // The i-th value of `key`, "" when there are fewer.
  std::string get_param_value(const std::string& key, size_t i = 0) const;
  bool has_file(const std::string& name) const { return files.count(name) > 0; }
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;
  // Why the server refused the request before routing it (a 4xx with an empty body), for the
  // error handler to put into words.
  std::string reason;

  void set_content(std::string content, std::string type) {
    body = std::move(content);
    content_type = std::move(type);
  }
  void set_header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
  void set_redirect(const std::string& url, int code) {
    status = code;
    set_header("Location", url);
  }
};

using HttpHandler = std::function<void(const HttpRequest&, HttpResponse&)>;

class HttpRoutes {
 public:
  // `pattern` must match the whole path; its groups become the request's matches.
  void Get(const std::string& pattern, HttpHandler h) { Add("GET", pattern, std::move(h)); }
  void Post(const std::string& pattern, HttpHandler h) { Add("POST", pattern, std::move(h)); }
  void Put(const std::string& pattern, HttpHandler h) { Add("PUT", pattern, std::move(h)); }
  void Patch(const std::string& pattern, HttpHandler h) { Add("PATCH", pattern, std::move(h)); }
  void Delete(const std::string& pattern, HttpHandler h) { Add("DELETE", pattern, std::move(h)); }

  // Runs before routing and may rewrite the request's path.
  void set_pre_routing(std::function<void(HttpRequest&)> f) { pre_routing_ = std::move(f); }
  // Runs after pre-routing and before routing: false means the request is answered with what
  // the guard put into the response (an authentication check, say). It sees the method, path,
  // params and headers: the server asks it once the headers are read, before it takes in a body,
  // and again before routing.
  void set_guard(std::function<bool(const HttpRequest&, HttpResponse&)> g) {
    guard_ = std::move(g);
  }
  bool has_guard() const { return static_cast<bool>(guard_); }
  // Fills the body of a response >= 400 that has none (no route: 404; a request the server
  // refused: its status and `reason`).
  void set_error_handler(HttpHandler h) { error_handler_ = std::move(h); }
  // Answers for a handler that threw (default: 500 with an empty body).
  void set_exception_handler(
      std::function<void(const HttpRequest&, HttpResponse&, std::exception_ptr)> h) {
    exception_handler_ = std::move(h);
  }

  // Routes `req` and answers into `res`: 404 when no route of its method matches its path (HEAD
  // is routed as GET, and answered without a body by the server).
  void Handle(HttpRequest& req, HttpResponse& res) const;
  // What the server does with a request it has read: parses its target and, with
  // `parse_forms`, a multipart or form-urlencoded body, then routes it (Handle); a request that
  // does not parse gets 400 (a form over kMaxFormBytes 413) through the error handler, one that
  // throws 500. Nothing escapes.
  void Serve(HttpRequest& req, HttpResponse& res, bool parse_forms) const;
  // Pre-routing and the guard: false when the guard refuses `req`, with `res` its answer.
  bool Admit(HttpRequest& req, HttpResponse& res) const;
  // The error handler's part of Handle, for a request the server refused before routing.
  void Refuse(const HttpRequest& req, HttpResponse& res) const;

 private:
  struct Route {
    std::string method;
    std::regex pattern;
    HttpHandler handler;
  };
  void Add(const char* method, const std::string& pattern, HttpHandler h) {
    routes_.push_back({method, std::regex(pattern), std::move(h)});
  }

  std::vector<Route> routes_;
  std::function<void(HttpRequest&)> pre_routing_;
  std::function<bool(const HttpRequest&, HttpResponse&)> guard_;
  HttpHandler error_handler_;
  std::function<void(const HttpRequest&, HttpResponse&, std::exception_ptr)> exception_handler_;
};

// Percent-decodes `s` once ('+' stays '+', as in a path); with `plus_is_space`, '+' is a space
// (a query). A '%' not followed by two hexadecimal digits is kept as it is.
std::string PercentDecode(const std::string& s, bool plus_is_space);

// Adds the parameters of a query string (or a form-urlencoded body), decoded, to `params`.
// InvalidArgument, adding nothing more, past kMaxParams of them.
inline constexpr size_t kMaxParams = 1000;
// Longest request target (path and query) a server reads: longer ones get 414. It also bounds
// the recursion of the route patterns' std::regex_match.
inline constexpr size_t kMaxTargetBytes = 4096;
// Largest form-urlencoded body turned into params (HttpRoutes::Serve).
inline constexpr size_t kMaxFormBytes = 64 * 1024;
absl::Status ParseQuery(std::string_view query, std::multimap<std::string, std::string>* params);

// Splits a request target into its decoded path and query parameters. InvalidArgument when it
// is not an origin-form target (it must start with '/').
absl::Status ParseTarget(const std::string& target, std::string* path,
                         std::multimap<std::string, std::string>* params);

// The parts of a multipart/form-data `body` whose Content-Type header is `content_type` (it
// names the boundary), their contents views into `body`. InvalidArgument naming what is
// malformed.
// InvalidArgument past kMaxParts parts.
inline constexpr size_t kMaxParts = 100;
absl::Status ParseMultipartFormData(const std::string& content_type, const std::string& body,
                                    std::multimap<std::string, HttpFormPart>* parts);
// The parts would outlive a temporary body.
absl::Status ParseMultipartFormData(const std::string& content_type, std::string&& body,
                                    std::multimap<std::string, HttpFormPart>* parts) = delete;

}  // namespace sluice
