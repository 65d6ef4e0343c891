#include "engine/model_card.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/npy.h"

namespace deepinside {

namespace fs = std::filesystem;
using nlohmann::json;

ChannelOrder parse_channel_order(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "rgb") return ChannelOrder::rgb;
  if (lower == "bgr") return ChannelOrder::bgr;
  if (lower == "grey" || lower == "gray") return ChannelOrder::grey;
  throw Error("unknown channel order '" + name + "' (use rgb, bgr or grey)");
}

const char* channel_order_name(ChannelOrder order) {
  switch (order) {
    case ChannelOrder::rgb: return "RGB";
    case ChannelOrder::bgr: return "BGR";
    case ChannelOrder::grey: return "GREY";
  }
  return "?";
}

std::vector<std::string> read_labels_file(const std::string& path) {
  std::ifstream in(path);
  require(bool(in), "cannot open label file '" + path + "'");
  std::vector<std::string> labels;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.size() > 10 && line[0] == 'n' && line[9] == ' ' &&
        std::all_of(line.begin() + 1, line.begin() + 9, [](unsigned char c) { return std::isdigit(c); }))
      line = line.substr(10);
    labels.push_back(line);
  }
  while (!labels.empty() && labels.back().empty()) labels.pop_back();
  require(!labels.empty(), "label file '" + path + "' is empty");
  return labels;
}

std::optional<std::string> find_model_card(const std::string& model_path) {
  const fs::path model(model_path);
  fs::path same_stem = model;
  same_stem.replace_extension(".json");
  if (fs::exists(same_stem)) return same_stem.string();
  const fs::path folder_card = model.parent_path() / "model.json";
  if (fs::exists(folder_card)) return folder_card.string();
  return std::nullopt;
}

namespace {

class CardReader {
 public:
  explicit CardReader(std::string path) : path_(std::move(path)), folder_(fs::path(path_).parent_path()) {}

  ModelCard read() {
    std::ifstream in(path_);
    require(bool(in), "cannot open model card '" + path_ + "'");
    json j;
    try {
      j = json::parse(in);
    } catch (const json::exception& e) {
      fail("", std::string("is not valid JSON: ") + e.what());
    }
    if (!j.is_object()) fail("", "must be a JSON object");
    check_keys(j, "", {"name", "model", "input", "scores", "labels", "metrics", "training", "source", "notes",
                       "license", "dataset"});
    ModelCard card;
    card.card_path = path_;
    card.name = optional_string(j, "name", "");
    const std::string model = optional_string(j, "model", "");
    if (!model.empty()) card.model = (folder_ / model).string();
    card.scores = optional_string(j, "scores", "");
    if (j.contains("labels")) read_labels(j["labels"], card);
    if (!j.contains("input")) fail("input", "is required");
    read_input(j["input"], card);
    return card;
  }

 private:
  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw Error("model card '" + path_ + "': " + (field.empty() ? "" : "field '" + field + "' ") + what);
  }

  void check_keys(const json& j, const std::string& where, std::set<std::string> allowed) const {
    for (const auto& item : j.items())
      if (!allowed.count(item.key())) fail(where + (where.empty() ? "" : ".") + item.key(), "is not a known field");
  }

  std::string optional_string(const json& j, const char* key, const std::string& fallback) const {
    if (!j.contains(key)) return fallback;
    if (!j[key].is_string()) fail(key, "must be a string");
    return j[key].get<std::string>();
  }

  float number(const json& j, const std::string& field) const {
    if (!j.is_number()) fail(field, "must be a number");
    return j.get<float>();
  }

  std::vector<float> numbers(const json& j, const std::string& field) const {
    if (!j.is_array() || j.empty()) fail(field, "must be a non-empty list of numbers");
    std::vector<float> out;
    for (const auto& v : j) out.push_back(number(v, field));
    return out;
  }

  void read_labels(const json& j, ModelCard& card) const {
    if (j.is_string()) {
      const fs::path p = folder_ / j.get<std::string>();
      if (!fs::exists(p)) fail("labels", "names '" + p.string() + "', which does not exist");
      card.labels = read_labels_file(p.string());
    } else if (j.is_array()) {
      for (const auto& v : j) {
        if (!v.is_string()) fail("labels", "must be a file name or a list of strings");
        card.labels.push_back(v.get<std::string>());
      }
    } else {
      fail("labels", "must be a file name or a list of strings");
    }
  }

  void read_input(const json& in, ModelCard& card) const {
    if (!in.is_object()) fail("input", "must be an object");
    check_keys(in, "input", {"name", "layout", "channel_order", "height", "width", "pixel_range", "mean",
                             "mean_image", "std", "scale", "resize"});
    Preprocessing& p = card.preprocessing;
    card.input_name = optional_string(in, "name", "");
    const std::string layout = optional_string(in, "layout", "NCHW");
    if (layout != "NCHW") fail("input.layout", "is '" + layout + "'; only NCHW is supported");
    if (in.contains("channel_order")) {
      try {
        p.channel_order = parse_channel_order(optional_string(in, "channel_order", "RGB"));
      } catch (const Error& e) {
        fail("input.channel_order", e.what());
      }
    }
    for (const char* key : {"height", "width"}) {
      if (!in.contains(key)) continue;
      if (!in[key].is_number_integer() || in[key].get<int>() <= 0)
        fail(std::string("input.") + key, "must be a positive integer");
      (std::string(key) == "height" ? p.height : p.width) = in[key].get<int>();
    }
    if (in.contains("pixel_range")) {
      const auto r = numbers(in["pixel_range"], "input.pixel_range");
      if (r.size() != 2 || !(r[1] > r[0])) fail("input.pixel_range", "must be [lo, hi] with hi > lo");
      p.range_lo = r[0];
      p.range_hi = r[1];
    }
    const size_t channels = p.channel_order == ChannelOrder::grey ? 1 : 3;
    if (in.contains("mean")) p.mean = numbers(in["mean"], "input.mean");
    if (in.contains("std")) p.std = numbers(in["std"], "input.std");
    if (!p.mean.empty() && p.mean.size() != channels)
      fail("input.mean", "has " + std::to_string(p.mean.size()) + " values for " + std::to_string(channels) +
                             " channels");
    if (!p.std.empty() && p.std.size() != channels)
      fail("input.std", "has " + std::to_string(p.std.size()) + " values for " + std::to_string(channels) +
                            " channels");
    for (float s : p.std)
      if (!(s > 0)) fail("input.std", "values must be > 0");
    if (in.contains("scale")) p.scale = number(in["scale"], "input.scale");
    if (in.contains("mean_image")) {
      if (!p.mean.empty()) fail("input.mean_image", "cannot be given together with input.mean");
      const fs::path file = folder_ / optional_string(in, "mean_image", "");
      if (!fs::exists(file)) fail("input.mean_image", "names '" + file.string() + "', which does not exist");
      p.mean_image = read_npy_tensor(file.string());
      if (p.mean_image->rank() != 3 || p.mean_image->dim(0) != int64_t(channels))
        fail("input.mean_image", "must be (C,H,W) with C = " + std::to_string(channels) + ", got " +
                                     shape_to_string(p.mean_image->shape()));
    }
    if (in.contains("resize")) {
      const json& r = in["resize"];
      if (!r.is_object()) fail("input.resize", "must be an object");
      check_keys(r, "input.resize", {"shorter_side", "crop"});
      if (r.contains("shorter_side")) {
        if (!r["shorter_side"].is_number_integer() || r["shorter_side"].get<int>() < 0)
          fail("input.resize.shorter_side", "must be an integer >= 0");
        p.resize_shorter = r["shorter_side"].get<int>();
      }
      if (r.contains("crop") && r["crop"] != "center")
        fail("input.resize.crop", "must be \"center\"");
    }
  }

  std::string path_;
  fs::path folder_;
};

}  // namespace

ModelCard load_model_card(const std::string& path) { return CardReader(path).read(); }

}  // namespace deepinside
