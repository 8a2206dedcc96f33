#include "eval/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace akv {

namespace {

const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                          "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939"};

std::string Fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// About n "nice" ticks (1, 2, 5 x 10^k) covering [lo, hi].
std::vector<double> NiceTicks(double lo, double hi, int n) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, n);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  return t;
}

}  // namespace

std::string HtmlEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string RenderSvgChart(const ChartSpec& c) {
  const double W = c.width, H = c.height;
  const double left = 64, right = 190, top = 34, bottom = 50;  // right margin holds the legend
  const double pw = W - left - right, ph = H - top - bottom;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : c.series)
    for (auto [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      const double xv = c.x_log2 ? std::log2(std::max(x, 1e-9)) : x;
      x0 = std::min(x0, xv), x1 = std::max(x1, xv), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  const bool empty = !(x0 <= x1);
  if (empty) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (c.y_max > c.y_min) y0 = c.y_min, y1 = c.y_max;
  if (c.y_from_zero) y0 = std::min(y0, 0.0);
  if (x1 - x0 < 1e-12) x0 -= 0.5, x1 += 0.5;
  if (y1 - y0 < 1e-12) {
    const double pad = std::max(std::abs(y0) * 0.05, 0.5);
    y0 -= pad, y1 += pad;
  } else if (!(c.y_max > c.y_min)) {
    const double pad = (y1 - y0) * 0.06;
    y1 += pad;
    if (!c.y_from_zero) y0 -= pad;
  }
  const double xpad = (x1 - x0) * 0.04;
  x0 -= xpad, x1 += xpad;
  auto X = [&](double x) { return left + ((c.x_log2 ? std::log2(std::max(x, 1e-9)) : x) - x0) / (x1 - x0) * pw; };
  auto Y = [&](double y) { return top + (1 - (y - y0) / (y1 - y0)) * ph; };

  std::string o = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" + Fmt("%.0f", W) + "\" height=\"" +
                  Fmt("%.0f", H) + "\" viewBox=\"0 0 " + Fmt("%.0f", W) + " " + Fmt("%.0f", H) + "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  o += "<rect x=\"0\" y=\"0\" width=\"" + Fmt("%.0f", W) + "\" height=\"" + Fmt("%.0f", H) + "\" fill=\"#ffffff\"/>\n";
  o += "<rect x=\"" + Fmt("%.1f", left) + "\" y=\"" + Fmt("%.1f", top) + "\" width=\"" + Fmt("%.1f", pw) + "\" height=\"" +
       Fmt("%.1f", ph) + "\" fill=\"#fafafa\" stroke=\"#999\"/>\n";
  o += "<text x=\"" + Fmt("%.1f", left + pw / 2) + "\" y=\"20\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">" +
       HtmlEscape(c.title) + "</text>\n";
  // Grid and ticks.
  for (double t : NiceTicks(y0, y1, 5)) {
    if (t < y0 - 1e-9 || t > y1 + 1e-9) continue;
    const double y = Y(t);
    o += "<path d=\"M" + Fmt("%.1f", left) + " " + Fmt("%.1f", y) + "H" + Fmt("%.1f", left + pw) + "\" stroke=\"#e2e2e2\"/>\n";
    o += "<text x=\"" + Fmt("%.1f", left - 6) + "\" y=\"" + Fmt("%.1f", y + 4) + "\" text-anchor=\"end\">" + Fmt(c.y_format.c_str(), t) + "</text>\n";
  }
  std::vector<double> xt;
  if (c.x_log2) {
    for (double e = std::ceil(x0); e <= std::floor(x1); e += 1) xt.push_back(std::pow(2.0, e));
  } else {
    xt = NiceTicks(x0, x1, 6);
  }
  for (double t : xt) {
    const double x = X(t);
    if (x < left - 1e-6 || x > left + pw + 1e-6) continue;
    o += "<path d=\"M" + Fmt("%.1f", x) + " " + Fmt("%.1f", top) + "V" + Fmt("%.1f", top + ph) + "\" stroke=\"#eeeeee\"/>\n";
    o += "<text x=\"" + Fmt("%.1f", x) + "\" y=\"" + Fmt("%.1f", top + ph + 16) + "\" text-anchor=\"middle\">" + Fmt("%g", t) + "</text>\n";
  }
  o += "<text x=\"" + Fmt("%.1f", left + pw / 2) + "\" y=\"" + Fmt("%.1f", H - 10) + "\" text-anchor=\"middle\">" + HtmlEscape(c.x_label) + "</text>\n";
  o += "<text transform=\"translate(14," + Fmt("%.1f", top + ph / 2) + ") rotate(-90)\" text-anchor=\"middle\">" + HtmlEscape(c.y_label) + "</text>\n";
  if (empty)
    o += "<text x=\"" + Fmt("%.1f", left + pw / 2) + "\" y=\"" + Fmt("%.1f", top + ph / 2) + "\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n";
  // Series.
  for (size_t i = 0; i < c.series.size(); ++i) {
    const ChartSeries& s = c.series[i];
    const std::string color = kPalette[i % (sizeof kPalette / sizeof *kPalette)];
    // Earlier series are drawn wider and with larger markers, so a series that coincides with
    // one drawn before it (common: several methods at 100%) still shows both colours.
    const double width = std::max(1.5, 2.0 + 0.9 * (static_cast<double>(c.series.size()) - 1 - i));
    const double radius = std::max(2.5, 3.0 + 0.9 * (static_cast<double>(c.series.size()) - 1 - i));
    std::string d;
    for (auto [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      d += (d.empty() ? "M" : "L") + Fmt("%.1f", X(x)) + " " + Fmt("%.1f", Y(y));
    }
    o += "<g class=\"series\" data-name=\"" + HtmlEscape(s.name) + "\">\n";
    if (s.points.size() > 1 && !d.empty())
      o += "<path d=\"" + d + "\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"" + Fmt("%.1f", width) + "\"" +
           (s.dashed ? " stroke-dasharray=\"6 4\"" : "") + "/>\n";
    for (auto [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      o += "<circle cx=\"" + Fmt("%.1f", X(x)) + "\" cy=\"" + Fmt("%.1f", Y(y)) + "\" r=\"" + Fmt("%.1f", radius) + "\" fill=\"" + color + "\"><title>" +
           HtmlEscape(s.name) + ": (" + Fmt("%g", x) + ", " + Fmt("%.4g", y) + ")</title></circle>\n";
    }
    o += "</g>\n";
    const double ly = top + 8 + 18.0 * i;
    o += "<rect x=\"" + Fmt("%.1f", left + pw + 12) + "\" y=\"" + Fmt("%.1f", ly) + "\" width=\"14\" height=\"10\" fill=\"" + color + "\"/>\n";
    o += "<text x=\"" + Fmt("%.1f", left + pw + 31) + "\" y=\"" + Fmt("%.1f", ly + 9) + "\">" + HtmlEscape(s.name) + "</text>\n";
  }
  o += "</svg>\n";
  return o;
}

}  // namespace akv
