/**
 * Fixtures shared by the tests.
 *
 * @module
 */

/** The env.conf block of the original service's README, verbatim (note the space after `0-15`). */
export const SEED_ENV_CONF = `# === Source Redis Configuration ===
SOURCE_REDIS_HOST=source-redis
SOURCE_REDIS_PORT=6379
SOURCE_REDIS_PASSWORD=
SOURCE_REDIS_DB=0 # Default DB if not specified in stream name or search range

# Source Connection Management
SOURCE_REDIS_MAX_RETRIES=5
SOURCE_REDIS_BACKOFF_BASE=1.0
SOURCE_REDIS_BACKOFF_MAX=30.0
SOURCE_REDIS_HEALTH_CHECK_INTERVAL=60
SOURCE_REDIS_POOL_SIZE=10

# === Target Redis Configuration ===
TARGET_REDIS_HOST=target-redis
TARGET_REDIS_PORT=6379
TARGET_REDIS_PASSWORD=
TARGET_REDIS_DB=0 # Target DB for writing
TARGET_STREAM_PREFIX= # Optional: Prefix added to stream names on target (e.g., "synced:")

# Target Connection Management
TARGET_REDIS_MAX_RETRIES=5
TARGET_REDIS_BACKOFF_BASE=1.0
TARGET_REDIS_BACKOFF_MAX=30.0
TARGET_REDIS_HEALTH_CHECK_INTERVAL=60
TARGET_REDIS_POOL_SIZE=10

# === Stream Processing Configuration (Source Redis) ===
# Manually specify streams (optional, overrides discovery for these)
# Format: stream_key or dbX:stream_key (e.g., "stream1,db1:stream2")
REDIS_STREAMS=

REDIS_STREAMS_ENABLED=true # Enable/disable stream processing
STREAM_CONSUMER_GROUP=redis-sync-group
STREAM_CONSUMER_NAME=redis-sync-consumer # Base name, PID appended
STREAM_BATCH_SIZE=100 # Messages per read attempt
STREAM_POLL_INTERVAL=1 # Seconds block time for XREADGROUP

# === Stream Auto-Discovery (Source Redis) ===
STREAM_AUTO_DISCOVERY=true
STREAM_DISCOVERY_PATTERNS=*-stream,device:*:stream,biosignal-*
STREAM_DISCOVERY_INTERVAL=10 # Seconds between discovery scans
STREAM_AUTO_CREATE_CONSUMER_GROUPS=true # Create groups for discovered streams
# Range of DBs to scan on source Redis (e.g., "0-15", "0,1,5")
REDIS_DB_SEARCH_RANGE=0-15 

# === Logging ===
LOG_LEVEL=INFO # DEBUG, INFO, WARNING, ERROR, CRITICAL
LOG_FORMAT=%(asctime)s - %(name)s - %(levelname)s - %(message)s

# === Docker Configuration ===
REGISTRY=localhost:5000
TAG=latest
`;
