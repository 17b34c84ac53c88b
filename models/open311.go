package models

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/paulmach/orb"
)

// Open311 GeoReport v2 (the api package's /open311/v2): the clients' keys, the reporters who
// came through a client, what a client sent that has no place on a case, and the updates
// clients posted. The case itself is an ordinary case: created by CreateCase, changed by
// Transition.

// Where an API key came from. Applying a city configuration replaces the keys it made and
// leaves those an administrator made through the API.
const (
	APIKeyFromConfig = "config"
	APIKeyFromAdmin  = "admin"
)

// Open311Key is an Open311 client's API key with where it came from.
type Open311Key struct {
	APIKey
	Source string
}

// TableName is the table of every API key.
func (Open311Key) TableName() string { return "api_keys" }

// FindAPIKey returns the key a client presented, by its digest, or ErrNotFound.
func (db *DB) FindAPIKey(ctx context.Context, key string) (*Open311Key, error) {
	if key == "" {
		return nil, fmt.Errorf("%w: empty api_key", ErrNotFound)
	}
	var k Open311Key
	if err := db.q(ctx).Where("key_sha256 = ?", HashAPIKey(key)).Take(&k).Error; err != nil {
		return nil, translate(err)
	}
	return &k, nil
}

// ListAPIKeys returns a city's API keys, by name. The keys themselves are not stored.
func (db *DB) ListAPIKeys(ctx context.Context, jurisdictionID string) ([]Open311Key, error) {
	var ks []Open311Key
	err := db.q(ctx).Where("jurisdiction_id = ?", jurisdictionID).Order("name, created_at, id").Find(&ks).Error
	return ks, translate(err)
}

// CreateAPIKey makes a new key for a city's client and returns it with the key itself, which
// is shown this once: only its digest is kept.
func (db *DB) CreateAPIKey(ctx context.Context, jurisdictionID, name string, now time.Time) (*Open311Key, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return nil, "", Problemf(ErrInvalid, "invalid-api-key", "name is required (at most 200 characters): who the key is for")
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, "", err
	}
	key := base64.RawURLEncoding.EncodeToString(b)
	k := &Open311Key{APIKey: APIKey{ID: NewID(), JurisdictionID: jurisdictionID, KeySHA256: HashAPIKey(key),
		Name: name, CreatedAt: now.UTC()}, Source: APIKeyFromAdmin}
	if err := db.q(ctx).Create(k).Error; err != nil {
		return nil, "", translate(err)
	}
	return k, key, nil
}

// DeleteAPIKey revokes one of a city's keys at once. A key from the city configuration comes
// back when a changed configuration is applied.
func (db *DB) DeleteAPIKey(ctx context.Context, jurisdictionID, id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return Problemf(ErrNotFound, "not-found", "no API key %q in this city", id)
	}
	res := db.q(ctx).Where("id = ? AND jurisdiction_id = ?", id, jurisdictionID).Delete(&Open311Key{})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return Problemf(ErrNotFound, "not-found", "no API key %q in this city", id)
	}
	return nil
}

// Jurisdictions returns every city on the platform, by id.
func (db *DB) Jurisdictions(ctx context.Context) ([]Jurisdiction, error) {
	var js []Jurisdiction
	err := db.q(ctx).Order("id").Find(&js).Error
	return js, translate(err)
}

// JurisdictionCentre is the centre of a city's extent (its boundary, else its areas): where a
// report that gave only an address is put, so that it has a point at all.
func (db *DB) JurisdictionCentre(ctx context.Context, jurisdictionID string) (lat, lon float64, err error) {
	j, err := db.Jurisdiction(ctx, jurisdictionID)
	if err != nil {
		return 0, 0, err
	}
	var shapes []string
	if j.Boundary != nil && *j.Boundary != "" {
		shapes = []string{*j.Boundary}
	} else {
		var areas []Area
		if err := db.q(ctx).Where("jurisdiction_id = ? AND active = ?", jurisdictionID, true).Find(&areas).Error; err != nil {
			return 0, 0, translate(err)
		}
		for _, a := range areas {
			shapes = append(shapes, a.Geometry)
		}
	}
	var b orb.Bound
	for i, s := range shapes {
		g, err := ParseArea(s)
		if err != nil {
			return 0, 0, fmt.Errorf("extent of %s: %w", jurisdictionID, err)
		}
		if i == 0 {
			b = g.Bound()
		} else {
			b = b.Union(g.Bound())
		}
	}
	if len(shapes) == 0 {
		return 0, 0, fmt.Errorf("%w: city %s has neither a boundary nor areas", ErrInvalid, jurisdictionID)
	}
	c := b.Center()
	return c.Lat(), c.Lon(), nil
}

// CaseByNumber returns a case by its human-readable number (case-insensitive).
func (db *DB) CaseByNumber(ctx context.Context, number string) (*Case, error) {
	var c Case
	if err := db.q(ctx).Where("number = ?", strings.ToUpper(strings.TrimSpace(number))).Take(&c).Error; err != nil {
		return nil, translate(err)
	}
	return &c, nil
}

// AllCategories returns every category of a city, the inactive ones too: old cases still
// name them.
func (db *DB) AllCategories(ctx context.Context, jurisdictionID string) ([]Category, error) {
	var cs []Category
	err := db.q(ctx).Where("jurisdiction_id = ?", jurisdictionID).Order("group_name, name").Find(&cs).Error
	return cs, translate(err)
}

// Open311Replay returns the record of the request that first used an idempotency key,
// whoever its reporter was, or ErrNotFound: Open311 clients send no key of their own, and a
// retry of a request without an email finds no reporter to look the key up under.
func (db *DB) Open311Replay(ctx context.Context, key string) (*IdempotencyKey, error) {
	var k IdempotencyKey
	if err := db.q(ctx).Where("key = ?", key).Order("created_at").Take(&k).Error; err != nil {
		return nil, translate(err)
	}
	return &k, nil
}

// Open311Contact is how to reach a reporter who came through an Open311 client. It is
// personal data: kept apart from the case, shown to no Open311 client, and used to recognise
// the same person again (by email).
type Open311Contact struct {
	UserID    string `gorm:"primaryKey"`
	Email     *string
	FirstName string
	LastName  string
	Phone     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TableName names the table explicitly: the digits would otherwise be split oddly.
func (Open311Contact) TableName() string { return "open311_contacts" }

// ReporterDetails are the person details of an Open311 request or update; all optional.
type ReporterDetails struct {
	Email, FirstName, LastName, Phone string
}

// EnsureOpen311Reporter returns the citizen behind an Open311 request or update: the one
// with this email if there is one (their name and phone are brought up to date), otherwise
// a new citizen. Without an email every call makes a new citizen: nothing else says two
// requests came from the same person.
func (db *DB) EnsureOpen311Reporter(ctx context.Context, d ReporterDetails, now time.Time) (*User, error) {
	now = now.UTC()
	email := strings.ToLower(strings.TrimSpace(d.Email))
	var out *User
	attempt := func() error {
		return db.InTx(ctx, func(tx *DB) error {
			if email != "" {
				var ct Open311Contact
				err := translate(tx.q(ctx).Where("email = ?", email).Take(&ct).Error)
				switch {
				case err == nil:
					updates := map[string]any{"updated_at": now}
					for col, v := range map[string]string{"first_name": d.FirstName, "last_name": d.LastName, "phone": d.Phone} {
						if v != "" {
							updates[col] = v
						}
					}
					if err := tx.q(ctx).Model(&ct).Where("user_id = ?", ct.UserID).Updates(updates).Error; err != nil {
						return err
					}
					u, err := tx.User(ctx, ct.UserID)
					out = u
					return err
				case !errors.Is(err, ErrNotFound):
					return err
				}
			}
			u := &User{ID: NewID(), Role: RoleCitizen, CreatedAt: now, UpdatedAt: now}
			if err := tx.q(ctx).Create(u).Error; err != nil {
				return err
			}
			ct := Open311Contact{UserID: u.ID, FirstName: d.FirstName, LastName: d.LastName, Phone: d.Phone, CreatedAt: now, UpdatedAt: now}
			if email != "" {
				ct.Email = &email
			}
			if err := tx.q(ctx).Create(&ct).Error; err != nil {
				return err
			}
			out = u
			return nil
		})
	}
	err := attempt()
	if errors.Is(err, ErrConflict) {
		// Another request made this email's citizen in the meantime: use theirs.
		err = attempt()
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Open311ContactOf returns a citizen's Open311 contact details, or ErrNotFound when they
// never came through an Open311 client.
func (db *DB) Open311ContactOf(ctx context.Context, userID string) (*Open311Contact, error) {
	var ct Open311Contact
	if err := db.q(ctx).Where("user_id = ?", userID).Take(&ct).Error; err != nil {
		return nil, translate(err)
	}
	return &ct, nil
}

// Open311Request is what an Open311 client sent with a case that the case has no place for.
// It is written just before the case (its id is chosen first), so a case never lacks it; a
// row whose case was never created is harmless and never read.
type Open311Request struct {
	CaseID    string `gorm:"primaryKey"`
	Client    string // the API key's name
	AccountID string
	DeviceID  string
	MediaURL  string
	// Located is false when the client gave only an address: the case's point is then the
	// city's centre, which no Open311 answer shows as the place.
	Located   bool
	CreatedAt time.Time
}

// TableName names the table explicitly.
func (Open311Request) TableName() string { return "open311_requests" }

// SaveOpen311Request records a request's extras; DeleteOpen311Request forgets them when the
// case was not created after all.
func (db *DB) SaveOpen311Request(ctx context.Context, r *Open311Request) error {
	return translate(db.q(ctx).Create(r).Error)
}

// DeleteOpen311Request forgets the extras of a case that was not created.
func (db *DB) DeleteOpen311Request(ctx context.Context, caseID string) error {
	return translate(db.q(ctx).Where("case_id = ?", caseID).Delete(&Open311Request{}).Error)
}

// Open311RequestsOf returns the Open311 extras of the cases that have them, by case id.
func (db *DB) Open311RequestsOf(ctx context.Context, caseIDs []string) (map[string]Open311Request, error) {
	out := map[string]Open311Request{}
	if len(caseIDs) == 0 {
		return out, nil
	}
	var rs []Open311Request
	if err := db.q(ctx).Where("case_id IN ?", caseIDs).Find(&rs).Error; err != nil {
		return nil, translate(err)
	}
	for _, r := range rs {
		out[r.CaseID] = r
	}
	return out, nil
}

// Open311Filter selects the cases of GET requests.
type Open311Filter struct {
	JurisdictionID string // "" with IDs: any city
	// IDs and Numbers, when given, override every other criterion, as the specification says.
	IDs, Numbers []string
	CategoryIDs  []string
	// Open and Closed select by Open311 status; neither (or both) means every case.
	Open, Closed bool
	From, To     time.Time // requested between [From, To]
	Offset       int
	Limit        int
}

// Open311Cases returns one page of cases, newest first.
func (db *DB) Open311Cases(ctx context.Context, f Open311Filter) ([]Case, error) {
	q := db.q(ctx).Model(&Case{})
	if f.JurisdictionID != "" {
		q = q.Where("jurisdiction_id = ?", f.JurisdictionID)
	}
	if len(f.IDs) > 0 || len(f.Numbers) > 0 {
		var ids []string
		for _, id := range f.IDs {
			if _, err := uuid.Parse(id); err == nil {
				ids = append(ids, strings.ToLower(id))
			}
		}
		numbers := make([]string, len(f.Numbers))
		for i, n := range f.Numbers {
			numbers[i] = strings.ToUpper(n)
		}
		switch {
		case len(ids) > 0 && len(numbers) > 0:
			q = q.Where("(id IN ? OR number IN ?)", ids, numbers)
		case len(ids) > 0:
			q = q.Where("id IN ?", ids)
		case len(numbers) > 0:
			q = q.Where("number IN ?", numbers)
		default:
			return nil, nil
		}
	} else {
		if len(f.CategoryIDs) > 0 {
			q = q.Where("category_id IN ?", f.CategoryIDs)
		}
		switch {
		case f.Open && !f.Closed:
			q = q.Where("status <> ?", StatusClosed)
		case f.Closed && !f.Open:
			q = q.Where("status = ?", StatusClosed)
		}
		q = q.Where("created_at >= ? AND created_at <= ?", f.From.UTC(), f.To.UTC())
	}
	var cs []Case
	err := q.Order("created_at DESC, id DESC").Offset(f.Offset).Limit(f.Limit).Find(&cs).Error
	return cs, translate(err)
}

// LatestPublicNotes returns, for each case that has one, the note of its latest public
// event with a note: Open311's status_notes.
func (db *DB) LatestPublicNotes(ctx context.Context, caseIDs []string) (map[string]string, error) {
	out := map[string]string{}
	if len(caseIDs) == 0 {
		return out, nil
	}
	var evs []CaseEvent
	err := db.q(ctx).Select("case_id, seq, note").
		Where("case_id IN ? AND public = ? AND note <> ''", caseIDs, true).Order("case_id, seq").Find(&evs).Error
	if err != nil {
		return nil, translate(err)
	}
	for _, e := range evs {
		out[e.CaseID] = e.Note // in seq order: the last one stays
	}
	return out, nil
}

// PublicUpdates returns a city's public case events from from to to, oldest first, a page at
// a time, leaving out each case's first event (the report itself, not an update of it).
func (db *DB) PublicUpdates(ctx context.Context, jurisdictionID string, from, to time.Time, offset, limit int) ([]CaseEvent, error) {
	var evs []CaseEvent
	err := db.q(ctx).Table("case_events AS e").Select("e.*").
		Joins("JOIN cases AS c ON c.id = e.case_id").
		// public = TRUE as a literal, not a parameter, so the partial index on public events
		// can serve the query.
		Where("c.jurisdiction_id = ? AND e.public = TRUE AND e.type <> ? AND e.created_at >= ? AND e.created_at <= ?",
			jurisdictionID, ActionSubmit, from.UTC(), to.UTC()).
		Order("e.created_at, e.id").Offset(offset).Limit(limit).Find(&evs).Error
	return evs, translate(err)
}

// EventResolution is how a closing event closed its case: the resolution it recorded, or
// fixed for a confirmation or a confirmation window that ran out.
func EventResolution(ev *CaseEvent) Resolution {
	var data struct {
		Resolution Resolution `json:"resolution"`
	}
	_ = json.Unmarshal([]byte(ev.Data), &data)
	if data.Resolution != "" {
		return data.Resolution
	}
	return ResolutionFixed
}

// Open311Update is an update an Open311 client posted (mySociety's servicerequestupdates).
// Its id is the update_id the client was given: the id of the case event it made, or a new
// id when it made none (an update to a case already closed, whose note is kept here).
type Open311Update struct {
	ID         string
	CaseID     string
	EventID    *string
	ExternalID *string // the client's own id for the update, which makes a retry harmless
	Client     string
	AuthorID   *string
	Status     string // as the client sent it
	Note       string
	CreatedAt  time.Time
}

// TableName names the table explicitly.
func (Open311Update) TableName() string { return "open311_updates" }

// FindOpen311Update returns the update a client already posted to a case under its own id,
// or ErrNotFound.
func (db *DB) FindOpen311Update(ctx context.Context, caseID, externalID string) (*Open311Update, error) {
	var u Open311Update
	if err := db.q(ctx).Where("case_id = ? AND external_id = ?", caseID, externalID).Take(&u).Error; err != nil {
		return nil, translate(err)
	}
	return &u, nil
}

// SaveOpen311Update records a client's update. A conflict means the same update was posted
// twice at once; the caller answers with the first.
func (db *DB) SaveOpen311Update(ctx context.Context, u *Open311Update) error {
	return translate(db.q(ctx).Create(u).Error)
}
