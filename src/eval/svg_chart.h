// Line/scatter charts as inline SVG, so the HTML report needs no script and no network.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace akv {

struct ChartSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in this order
  bool dashed = false;
};

struct ChartSpec {
  std::string title, x_label, y_label;
  std::vector<ChartSeries> series;
  bool x_log2 = false;           // x axis in powers of two (context lengths)
  bool y_from_zero = false;
  double y_min = 0, y_max = 0;   // both 0: from the data
  std::string y_format = "%g";   // printf format of y tick labels
  int width = 600, height = 360;
};

// A complete <svg> element: axes, ticks, a polyline and markers per series (each marker has a
// <title> with its values, shown on hover), and a legend.
std::string RenderSvgChart(const ChartSpec& chart);

// Escapes & < > " for HTML/SVG text and attributes.
std::string HtmlEscape(const std::string& s);

}  // namespace akv
