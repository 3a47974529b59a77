"""Initial schema: the CardVault spine plus what the pipeline needs.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = """
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger AS $$
BEGIN
    NEW.updated_at = now() AT TIME ZONE 'UTC';
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TABLE users (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    email VARCHAR(255) UNIQUE,
    email_verified_at TIMESTAMP,
    password_hash VARCHAR(255),
    username VARCHAR(50) UNIQUE NOT NULL,
    avatar_url VARCHAR(512),
    currency VARCHAR(3) NOT NULL DEFAULT 'USD',
    timezone VARCHAR(50) NOT NULL DEFAULT 'UTC',
    inventory_public BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    updated_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    deleted_at TIMESTAMP
);

-- Bearer tokens, stored as SHA-256 of the token; the token itself is shown once.
CREATE TABLE api_tokens (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash CHAR(64) UNIQUE NOT NULL,
    name VARCHAR(100),
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX idx_api_tokens_user_id ON api_tokens (user_id);

CREATE TABLE admin_users (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role VARCHAR(50) NOT NULL CHECK (role IN ('annotator', 'admin')),
    permissions JSONB,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    UNIQUE (user_id, role)
);

CREATE TABLE sets (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(255) NOT NULL,
    code VARCHAR(20) UNIQUE NOT NULL,
    game_type VARCHAR(50) NOT NULL,
    release_date DATE,
    total_cards INTEGER CHECK (total_cards >= 0),
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    updated_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
CREATE INDEX idx_sets_game_type ON sets (game_type);

CREATE TABLE cards (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    set_id UUID NOT NULL REFERENCES sets(id),
    card_key VARCHAR(100) UNIQUE NOT NULL,
    name VARCHAR(255) NOT NULL,
    card_number VARCHAR(20),
    variant VARCHAR(50),
    rarity VARCHAR(50),
    card_type VARCHAR(100),
    image_url VARCHAR(512),
    image_key VARCHAR(128),
    thumbnail_url VARCHAR(512),
    normalized_name VARCHAR(255) NOT NULL,
    tcgplayer_id VARCHAR(50),
    scryfall_id VARCHAR(50),
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    updated_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    deleted_at TIMESTAMP
);
CREATE INDEX idx_cards_set_id ON cards (set_id);
CREATE INDEX idx_cards_normalized_name ON cards (normalized_name);
CREATE INDEX idx_cards_tcgplayer_id ON cards (tcgplayer_id);
CREATE INDEX idx_cards_metadata_gin ON cards USING gin (metadata);

-- Content-addressed originals (seed 003): one row per (user, SHA-256).
CREATE TABLE uploads (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sha256 CHAR(64) NOT NULL,
    size_bytes BIGINT NOT NULL CHECK (size_bytes > 0),
    media_type VARCHAR(50) NOT NULL,
    width INTEGER,
    height INTEGER,
    storage_key VARCHAR(128) NOT NULL,
    original_filename VARCHAR(512),
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    UNIQUE (user_id, sha256)
);

CREATE TABLE scans (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    upload_id UUID NOT NULL REFERENCES uploads(id),
    image_url VARCHAR(512) NOT NULL,
    scan_type VARCHAR(20) NOT NULL DEFAULT 'multi' CHECK (scan_type IN ('single', 'multi')),
    status VARCHAR(20) NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    error_code VARCHAR(64),
    error_message TEXT,
    trigger VARCHAR(20) NOT NULL DEFAULT 'api' CHECK (trigger IN ('api', 'ingest', 'cli', 'reaper')),
    idempotency_key VARCHAR(255),
    location VARCHAR(255),
    detection_results JSONB,
    classification_results JSONB,
    model_versions JSONB,
    attempts INTEGER NOT NULL DEFAULT 0,
    processing_started_at TIMESTAMP,
    processed_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    updated_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    deleted_at TIMESTAMP
);
CREATE INDEX idx_scans_user_id ON scans (user_id);
CREATE INDEX idx_scans_status ON scans (status);
CREATE INDEX idx_scans_created_at ON scans (created_at);
CREATE UNIQUE INDEX uq_scans_upload ON scans (upload_id) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX uq_scans_idempotency ON scans (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL AND deleted_at IS NULL;

CREATE TABLE scan_cards (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    scan_id UUID NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
    card_index INTEGER NOT NULL CHECK (card_index >= 0),
    card_id UUID REFERENCES cards(id),
    bounding_box JSONB NOT NULL,
    quad JSONB NOT NULL,
    crop_image_url VARCHAR(512),
    predicted_set_id UUID REFERENCES sets(id),
    predicted_name VARCHAR(255),
    predicted_confidence DECIMAL(5,2) CHECK (predicted_confidence BETWEEN 0 AND 100),
    confidence DOUBLE PRECISION CHECK (confidence BETWEEN 0 AND 1),
    decision VARCHAR(20) NOT NULL CHECK (decision IN ('auto_accepted', 'needs_review', 'no_match')),
    review_status VARCHAR(20) CHECK (review_status IN ('confirmed', 'corrected', 'rejected')),
    candidates JSONB NOT NULL DEFAULT '[]'::jsonb,
    evidence JSONB,
    detector_version VARCHAR(100),
    embedder_version VARCHAR(100),
    index_version VARCHAR(100),
    lease_owner UUID REFERENCES users(id),
    lease_expires_at TIMESTAMP,
    reviewed_by UUID REFERENCES users(id),
    reviewed_at TIMESTAMP,
    confirmed_card_id UUID REFERENCES cards(id),
    confirmed_set_id UUID REFERENCES sets(id),
    confirmed_name VARCHAR(255),
    confirmed_condition VARCHAR(50),
    confirmed_quantity INTEGER DEFAULT 1 CHECK (confirmed_quantity > 0),
    saved_to_inventory BOOLEAN NOT NULL DEFAULT FALSE,
    inventory_entry_id UUID,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    updated_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    UNIQUE (scan_id, card_index)
);
CREATE INDEX idx_scan_cards_scan_id ON scan_cards (scan_id);
CREATE INDEX idx_scan_cards_card_id ON scan_cards (card_id);
CREATE INDEX idx_scan_cards_review_queue ON scan_cards (confidence)
    WHERE decision = 'needs_review' AND review_status IS NULL;

-- Partitioned by user (seed 000): the primary key and unique keys carry user_id.
CREATE TABLE inventory_entries (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    card_id UUID NOT NULL REFERENCES cards(id),
    scan_card_id UUID REFERENCES scan_cards(id) ON DELETE SET NULL,
    quantity INTEGER NOT NULL DEFAULT 1 CHECK (quantity > 0),
    condition VARCHAR(50) NOT NULL,
    condition_grade DECIMAL(3,1) CHECK (condition_grade BETWEEN 1 AND 10),
    notes TEXT,
    location VARCHAR(255),
    purchase_price DECIMAL(10,2) CHECK (purchase_price >= 0),
    purchase_date DATE,
    purchase_source VARCHAR(255),
    scanned_at TIMESTAMP DEFAULT (now() AT TIME ZONE 'UTC'),
    scan_image_url VARCHAR(512),
    scan_confidence DECIMAL(5,2) CHECK (scan_confidence BETWEEN 0 AND 100),
    last_valuated_at TIMESTAMP,
    last_valuated_price DECIMAL(10,2),
    last_valuated_currency VARCHAR(3) DEFAULT 'USD',
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    updated_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    deleted_at TIMESTAMP,
    PRIMARY KEY (id, user_id),
    UNIQUE (user_id, scan_card_id)
) PARTITION BY HASH (user_id);
CREATE TABLE inventory_entries_p0 PARTITION OF inventory_entries FOR VALUES WITH (MODULUS 4, REMAINDER 0);
CREATE TABLE inventory_entries_p1 PARTITION OF inventory_entries FOR VALUES WITH (MODULUS 4, REMAINDER 1);
CREATE TABLE inventory_entries_p2 PARTITION OF inventory_entries FOR VALUES WITH (MODULUS 4, REMAINDER 2);
CREATE TABLE inventory_entries_p3 PARTITION OF inventory_entries FOR VALUES WITH (MODULUS 4, REMAINDER 3);
CREATE INDEX idx_inventory_user_id ON inventory_entries (user_id);
CREATE INDEX idx_inventory_card_id ON inventory_entries (card_id);
CREATE INDEX idx_inventory_user_card ON inventory_entries (user_id, card_id);
CREATE INDEX idx_inventory_scanned_at ON inventory_entries (scanned_at);
CREATE INDEX idx_inventory_user_condition ON inventory_entries (user_id, condition)
    WHERE deleted_at IS NULL;

CREATE TABLE price_sources (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(255) UNIQUE NOT NULL,
    source_type VARCHAR(50) NOT NULL DEFAULT 'import',
    api_endpoint VARCHAR(512),
    last_sync_at TIMESTAMP,
    sync_frequency_minutes INTEGER DEFAULT 1440,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);

CREATE TABLE card_prices (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    card_id UUID NOT NULL REFERENCES cards(id) ON DELETE CASCADE,
    price_source_id UUID NOT NULL REFERENCES price_sources(id),
    price DECIMAL(10,2) NOT NULL CHECK (price >= 0),
    currency VARCHAR(3) NOT NULL DEFAULT 'USD',
    condition VARCHAR(50),
    listing_type VARCHAR(50),
    observed_at TIMESTAMP NOT NULL,
    sale_date DATE,
    metadata JSONB,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    UNIQUE (card_id, price_source_id, condition, listing_type, observed_at)
);
CREATE INDEX idx_prices_card_id ON card_prices (card_id);
CREATE INDEX idx_prices_source_id ON card_prices (price_source_id);
CREATE INDEX idx_prices_observed_at ON card_prices (observed_at);
CREATE INDEX idx_prices_card_observed ON card_prices (card_id, observed_at DESC);

CREATE TABLE card_valuations (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    card_id UUID NOT NULL REFERENCES cards(id) ON DELETE CASCADE,
    condition VARCHAR(50),
    fmv DECIMAL(10,2) NOT NULL,
    confidence_interval_lower DECIMAL(10,2),
    confidence_interval_upper DECIMAL(10,2),
    sample_size INTEGER NOT NULL CHECK (sample_size >= 0),
    outliers_rejected INTEGER NOT NULL DEFAULT 0,
    currency VARCHAR(3) NOT NULL DEFAULT 'USD',
    min_price DECIMAL(10,2),
    max_price DECIMAL(10,2),
    median_price DECIMAL(10,2),
    computed_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    valid_until TIMESTAMP,
    UNIQUE (card_id, condition, computed_at)
);
CREATE INDEX idx_valuations_card_id ON card_valuations (card_id);
CREATE INDEX idx_valuations_computed_at ON card_valuations (computed_at);

CREATE TABLE portfolio_snapshots (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    snapshot_date DATE NOT NULL,
    total_value DECIMAL(12,2) NOT NULL,
    total_cards INTEGER NOT NULL,
    unique_cards INTEGER NOT NULL,
    value_by_set JSONB,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    UNIQUE (user_id, snapshot_date)
);
CREATE INDEX idx_snapshots_user_date ON portfolio_snapshots (user_id, snapshot_date DESC);

-- One row per task run (seed 003's processing jobs): trigger, timings per stage, error type.
CREATE TABLE jobs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    scan_id UUID NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
    task_name VARCHAR(100) NOT NULL DEFAULT 'process_scan',
    trigger VARCHAR(20) NOT NULL CHECK (trigger IN ('api', 'ingest', 'cli', 'reaper')),
    status VARCHAR(20) NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'retrying')),
    attempts INTEGER NOT NULL DEFAULT 0,
    celery_task_id VARCHAR(255),
    worker VARCHAR(255),
    stage_timings JSONB,
    error_type VARCHAR(100),
    error_message TEXT,
    queued_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    started_at TIMESTAMP,
    finished_at TIMESTAMP
);
CREATE INDEX idx_jobs_scan_id ON jobs (scan_id);
CREATE INDEX idx_jobs_status ON jobs (status);

-- Seed 002: metrics per model version.
CREATE TABLE model_metrics (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    model_name VARCHAR(100) NOT NULL,
    model_version VARCHAR(100) NOT NULL,
    metric_name VARCHAR(100) NOT NULL,
    metric_value DOUBLE PRECISION NOT NULL,
    dataset VARCHAR(255) NOT NULL DEFAULT '',
    details JSONB,
    recorded_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    UNIQUE (model_name, model_version, metric_name, dataset)
);

-- Seed 001's training data: every annotator correction, with the crop.
CREATE TABLE training_examples (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    scan_card_id UUID REFERENCES scan_cards(id) ON DELETE SET NULL,
    card_id UUID REFERENCES cards(id),
    predicted_card_id UUID REFERENCES cards(id),
    crop_key VARCHAR(512) NOT NULL,
    kind VARCHAR(30) NOT NULL CHECK (kind IN ('correction', 'non_top_confirmation', 'rejection')),
    annotator_id UUID REFERENCES users(id),
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    UNIQUE (scan_card_id)
);
CREATE INDEX idx_training_examples_card_id ON training_examples (card_id);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    actor_user_id UUID REFERENCES users(id) ON DELETE SET NULL,
    action VARCHAR(100) NOT NULL,
    entity_type VARCHAR(50) NOT NULL,
    entity_id VARCHAR(100) NOT NULL,
    before JSONB,
    after JSONB,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
CREATE INDEX idx_audit_log_entity ON audit_log (entity_type, entity_id);
CREATE INDEX idx_audit_log_created_at ON audit_log (created_at DESC);
"""

UPDATED_AT_TABLES = ("users", "sets", "cards", "scans", "scan_cards", "inventory_entries")

TRIGRAM = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        CREATE INDEX idx_cards_name_trgm ON cards USING gin (name gin_trgm_ops);
    END IF;
END
$$;
"""


def upgrade() -> None:
    op.execute(SCHEMA)
    for table in UPDATED_AT_TABLES:
        op.execute(
            f"CREATE TRIGGER trg_{table}_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
        )
    op.execute(TRIGRAM)


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only (seed 003)")
