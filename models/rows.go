package models

import "time"

// The rows below mirror the tables of the migrations one for one. They are the data layer's
// own types: the API converts them into its wire types and never serialises them directly.

// Jurisdiction is a city on the platform.
type Jurisdiction struct {
	ID                 string
	Name               string
	Timezone           string
	Boundary           *string // GeoJSON geometry; nil means the union of the areas
	TriageDepartmentID *string
	NextCaseSeq        int64
	ConfigHash         string
	Calendar           string // JSON Calendar: the working hours and holidays deadlines count in
	ConfirmWindowHours int    // how long a reporter may confirm or reopen a resolved case
	EscalationHours    int    // working hours between escalation levels of an overdue case
	CreatedAt          time.Time
	UpdatedAt          time.Time

	// How long personal data is kept (docs/privacy.md), in days: photo originals, and the
	// personal data of closed cases.
	RetentionOriginalsDays int
	RetentionClosedDays    int
}

// Department does the work and owns a queue.
type Department struct {
	ID             string
	JurisdictionID string
	Code           string
	Name           string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Category is a kind of problem a citizen can report (an Open311 service).
type Category struct {
	ID             string
	JurisdictionID string
	Code           string
	Name           string
	GroupName      string
	Description    string
	DepartmentID   *string
	SLAHours       int    `gorm:"column:sla_hours"`
	Attributes     string // JSON array of Attribute
	AfterPhoto     string // "required" or "optional": an "after" photo when resolving
	// Sensitive categories' reports show only an approximate place in public.
	Sensitive bool
	// DuplicateRadiusM and DuplicateWindowHours say which open reports of the category are
	// likely the same problem: within that distance, filed within that time.
	DuplicateRadiusM     int `gorm:"column:duplicate_radius_m"`
	DuplicateWindowHours int
	Active               bool
	CreatedAt            time.Time
	UpdatedAt            time.Time
}

// Area is a named polygon inside a jurisdiction.
type Area struct {
	ID             string
	JurisdictionID string
	Code           string
	Name           string
	Geometry       string // GeoJSON geometry
	// Active is false for an area retired from the configuration: cases keep it, new
	// reports are not placed in it.
	Active    bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// RoutingRule sends a category's cases in one area to a department.
type RoutingRule struct {
	ID             string
	JurisdictionID string
	CategoryID     string
	AreaID         string
	DepartmentID   string
	CreatedAt      time.Time
}

// Role is what a user is to City Eyes.
type Role string

// The roles.
const (
	RoleCitizen    Role = "citizen"
	RoleHandler    Role = "handler"
	RoleSupervisor Role = "supervisor"
	RoleAdmin      Role = "admin"
	RoleSystem     Role = "system" // the workers, in case events
)

// User is a citizen (a device identity) or a member of staff.
type User struct {
	ID             string
	Role           Role
	JurisdictionID *string
	DepartmentID   *string
	Email          *string
	Name           string
	PasswordHash   string
	Disabled       bool
	CreatedAt      time.Time
	UpdatedAt      time.Time

	// ErasedAt is when the citizen had their personal data deleted (docs/privacy.md).
	ErasedAt *time.Time
}

// Device is one of a citizen's phones, with its push token.
type Device struct {
	ID             string
	UserID         string
	DeviceID       string
	Platform       string
	PushToken      *string
	Locale         string
	TokenInvalidAt *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Case is a report once accepted, and everything the city does about it.
type Case struct {
	ID              string
	Number          string
	JurisdictionID  string
	CategoryID      string
	AreaID          *string
	DepartmentID    *string
	AssigneeID      *string
	ReporterID      string
	Status          Status
	Resolution      Resolution
	Priority        int
	Description     string
	Lat             float64
	Lon             float64
	LocationSource  string // "device", or "photo_exif" when the point came from a photo's GPS tags
	Address         string
	Attributes      string // JSON object: attribute code → answer
	DueAt           *time.Time
	DispatchedAt    *time.Time
	FirstResponseAt *time.Time
	ResolvedAt      *time.Time
	ClosedAt        *time.Time
	DuplicateOf     *string
	DeferredUntil   *time.Time // set while the deadline is paused (缓办)
	RemainingSecs   *int64     `gorm:"column:remaining_seconds"` // working time left when paused
	EscalationLevel int
	Supporters      int
	Version         int
	CreatedAt       time.Time
	UpdatedAt       time.Time

	// AnonymisedAt is when the case's personal data was removed (docs/privacy.md).
	AnonymisedAt *time.Time

	// What the KPIs read of its history, kept on the row too (models/rollup.go): whether the
	// reporter ever reopened it, whether it was ever deferred, and its rating and when.
	Reopened bool
	Deferred bool
	Rating   *int
	RatedAt  *time.Time
}

// CaseEvent is one entry of a case's append-only timeline.
type CaseEvent struct {
	ID         string
	CaseID     string
	Seq        int
	Type       Action
	ActorID    *string
	ActorRole  Role
	FromStatus Status
	ToStatus   Status
	Public     bool
	Note       string
	Data       string // JSON object with the action's details (department, assignee, ...)
	CreatedAt  time.Time
}

// Media is a photo of a case.
type Media struct {
	ID          string
	CaseID      *string
	OwnerID     string
	Kind        string // "before" (the reporter's) or "after" (the handler's)
	ObjectKey   string
	ContentType string
	Size        int64
	Width       int
	Height      int
	SHA256      string `gorm:"column:sha256"`
	// DisplayKey and ThumbKey are the versions the photo task made: oriented, without
	// EXIF. Until then (or if the photo could not be read) they are nil.
	DisplayKey   *string
	ThumbKey     *string
	ProcessedAt  *time.Time
	ProcessError string
	CreatedAt    time.Time

	// OriginalDeletedAt is when the original left the object store (retention, or its
	// citizen's deletion); the stripped versions stay.
	OriginalDeletedAt *time.Time
}

// Media kinds.
const (
	MediaBefore = "before"
	MediaAfter  = "after"
)

// Notification is one inbox entry: a public event of a case, for one user.
type Notification struct {
	ID         string
	UserID     string
	CaseID     string
	EventID    string
	EventType  Action
	Status     Status
	Resolution Resolution
	ReadAt     *time.Time
	CreatedAt  time.Time
	// Digest is set on a supervisor's digest in the inbox (models/digest.go): an entry of
	// its own table, without a case or an event.
	Digest *Digest `gorm:"-"`
}

// Delivery is one push of one event to one device.
type Delivery struct {
	ID           string
	EventID      string
	DeviceID     string
	State        string
	FCMMessageID string `gorm:"column:fcm_message_id"`
	Error        string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Delivery states.
const (
	DeliveryPending = "pending"
	DeliverySent    = "sent"
	DeliveryDropped = "dropped" // the token was dead; the device's token was cleared
	// DeliverySending is a push handed to FCM whose outcome is not recorded yet. Found so
	// by a later run of the task, it is in doubt: the worker died between FCM taking it and
	// the record. It is sent again (an app drops the repeat by its event_id) and recorded
	// with DeliveryResent as its note, so a second push is always accounted for.
	DeliverySending = "sending"
)

// DeliveryResent is the note on a delivery sent again after an attempt in doubt.
const DeliveryResent = "sent again: an earlier attempt was interrupted before its outcome was recorded"

// Outbox is work to hand to the task queue, written in the same transaction as the change
// that causes it.
type Outbox struct {
	ID            string
	TaskType      string
	Payload       string
	ProcessAt     time.Time
	NextAttemptAt time.Time
	EnqueuedAt    *time.Time
	DoneAt        *time.Time
	Attempts      int
	CreatedAt     time.Time
	// RequestID is the HTTP request that caused the task (migration 10), for the logs.
	RequestID string
}

// TableName keeps GORM from pluralising the table name.
func (Outbox) TableName() string { return "outbox" }

// TableName keeps GORM from pluralising the table name.
func (Media) TableName() string { return "media" }

// IdempotencyKey remembers the first answer to a client's write.
type IdempotencyKey struct {
	UserID      string
	Key         string
	Fingerprint string
	CaseID      string
	CreatedAt   time.Time
}

// APIKey lets an Open311 client write to one jurisdiction.
type APIKey struct {
	ID             string
	JurisdictionID string
	KeySHA256      string `gorm:"column:key_sha256"`
	Name           string
	CreatedAt      time.Time
}

// RefreshToken lets a member of staff get a new access token without signing in again.
type RefreshToken struct {
	ID          string
	UserID      string
	TokenSHA256 string `gorm:"column:token_sha256"`
	ExpiresAt   time.Time
	UsedAt      *time.Time
	CreatedAt   time.Time
}
