// Package kibana embeds pamtrail's Kibana saved objects (data views, saved
// searches, visualizations, dashboards) so that `pamtrail setup kibana` can
// import them without the repository at hand.
package kibana

import _ "embed"

// SavedObjectsFile is the name the NDJSON is uploaded under.
const SavedObjectsFile = "pamtrail.ndjson"

// SavedObjects is the NDJSON export of every pamtrail saved object.
//
//go:embed pamtrail.ndjson
var SavedObjects []byte
