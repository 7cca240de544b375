# zt_otlp: OTLP export over gRPC (grpc++) and HTTP (libcurl, protobuf or JSON bodies), its
# configuration from OTEL_EXPORTER_OTLP_* and flags, and the retry policy. Included from
# userspace/export/CMakeLists.txt after zt_export and userspace/export/otlp (zt_otlp_proto).
find_package(CURL REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(ZLIB REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
add_library(zt_otlp STATIC
  ${CMAKE_CURRENT_LIST_DIR}/otlp_proto.cc
  ${CMAKE_CURRENT_LIST_DIR}/otlp_span_wire.cc
  ${CMAKE_CURRENT_LIST_DIR}/otlp_config.cc
  ${CMAKE_CURRENT_LIST_DIR}/pem_files.cc
  ${CMAKE_CURRENT_LIST_DIR}/retry.cc
  ${CMAKE_CURRENT_LIST_DIR}/otlp_exporter_base.cc
  ${CMAKE_CURRENT_LIST_DIR}/otlp_grpc_exporter.cc
  ${CMAKE_CURRENT_LIST_DIR}/otlp_http_exporter.cc
  ${CMAKE_CURRENT_LIST_DIR}/otlp_metrics_exporter.cc
)
target_include_directories(zt_otlp PUBLIC ${PROJECT_SOURCE_DIR}/userspace)
target_link_libraries(zt_otlp
  PUBLIC zt_export zt_otlp_proto zt_metrics
  PRIVATE CURL::libcurl OpenSSL::Crypto ZLIB::ZLIB nlohmann_json::nlohmann_json)
# Same instrumentation scope version as the OTLP/JSON encoder in zt_export.
target_compile_definitions(zt_otlp PRIVATE ZT_VERSION="${PROJECT_VERSION}")
