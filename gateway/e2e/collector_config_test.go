package e2e

import "fmt"

// collectorConfig is examples/quickstart/collector.yaml with this test's
// ports and directories.
func collectorConfig(otlpAddr, healthAddr, esURL, queueDir string) string {
	return collectorConfigWith(otlpAddr, healthAddr, esURL, queueDir, true, true)
}

// collectorConfigWith is collectorConfig with or without the session
// processor, and with the exporter's queue in encrypted_storage (with
// large_values) or in file_storage alone.
func collectorConfigWith(otlpAddr, healthAddr, esURL, queueDir string, sessionProcessor, sealedQueue bool) string {
	storage, extensions, sealing := "file_storage", "health_check, file_storage", ""
	if sealedQueue {
		storage, extensions = "encrypted_storage", "health_check, file_storage, encrypted_storage"
		sealing = fmt.Sprintf(`  encrypted_storage:
    storage: file_storage
    key_file: %[1]s/queue.keys
    large_values:
      directory: %[1]s/values
`, queueDir)
	}
	processor, processors := "", ""
	if sessionProcessor {
		processor = fmt.Sprintf(`processors:
  session:
    # The gateways in these tests upload (and heartbeat) every second.
    heartbeat_interval: 1s
    lost_after_heartbeats: 5
    sessions_index:
      endpoint: %s
`, esURL)
		processors = "\n      processors: [session]"
	}
	return fmt.Sprintf(`extensions:
  health_check:
    endpoint: %[1]s
  file_storage:
    directory: %[2]s
    create_directory: true
    fsync: true
%[5]sreceivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[4]s
        max_recv_msg_size_mib: 64
%[6]sexporters:
  elasticsearch:
    endpoint: %[3]s
    logs_index: pamtrail-events
    compression: none
    timeout: 24h # as in the quickstart: a shorter one drops queued data in a long outage
    logs_dynamic_id:
      enabled: true
    suppress_conflict_errors: true
    retry:
      enabled: true
      max_retries: 1500
      initial_interval: 200ms
      max_interval: 2s
      retry_on_status: [429, 502, 503, 504]
    sending_queue:
      enabled: true
      storage: %[8]s
      block_on_overflow: true
      queue_size: 1000
      num_consumers: 4
      batch:
        flush_timeout: 200ms
service:
  extensions: [%[9]s]
  pipelines:
    logs:
      receivers: [otlp]%[7]s
      exporters: [elasticsearch]
  telemetry:
    metrics:
      level: none
`, healthAddr, queueDir, esURL, otlpAddr, sealing, processor, processors, storage, extensions)
}
