package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Privacy: what the city keeps on a citizen, how a citizen gets it and has it deleted, and
// how long the city keeps personal data at all. docs/privacy.md lists every piece of personal
// data and what each operation here does with it.
//
// Two operations do the work, and both run in batches, each its own transaction, each safe
// to run again after a failure half way:
//
//   - anonymising a closed case removes its personal data: the reporter's link (to the
//     tombstone), the text the reporter wrote, their contact details, supporters, inbox
//     entries and idempotency records, and the originals of the reporter's photos;
//   - unlinking an open case (its reporter deleted their data) removes the link to the
//     person but keeps what the city needs to fix the problem: the description, the address
//     and the answers; the case is anonymised like any other once closed for long enough.
//
// Originals of photos leave the object store before their rows are marked: a failure in
// between leaves a row that the next run marks, never an original nobody knows of.

// TombstoneID is the user that anonymised cases and the cases of erased citizens point at:
// one shared "nobody", so that nothing links those cases to each other or to anyone.
const TombstoneID = "00000000-0000-0000-0000-000000000000"

// Retention defaults (days) when a city's configuration says nothing, and the longest period
// a city may set.
const (
	DefaultOriginalsDays      = 365
	DefaultClosedPersonalDays = 730
	MaxRetentionDays          = 3650
)

// PrivacyBatch is how many cases or photos one transaction of the retention and erasure
// work handles: small enough that no transaction holds locks for long on a large city.
const PrivacyBatch = 200

// RetentionConfig is the retention section of a city configuration.
type RetentionConfig struct {
	// OriginalsDays is how long a photo's original (with its EXIF: GPS position, camera) is
	// kept after the photo was taken in; the stripped versions stay. 0: as soon as they exist.
	OriginalsDays *int `json:"originals_days,omitempty"`
	// ClosedPersonalDays is how long a closed case keeps its personal data after closing.
	ClosedPersonalDays *int `json:"closed_personal_days,omitempty"`
}

// check reports what is wrong with a retention section; nil is the defaults.
func (r *RetentionConfig) check() []string {
	if r == nil {
		return nil
	}
	var errs []string
	for name, v := range map[string]*int{"originals_days": r.OriginalsDays, "closed_personal_days": r.ClosedPersonalDays} {
		if v != nil && (*v < 0 || *v > MaxRetentionDays) {
			errs = append(errs, fmt.Sprintf("retention.%s %d must be from 0 to %d days", name, *v, MaxRetentionDays))
		}
	}
	if len(errs) == 2 && errs[0] > errs[1] {
		errs[0], errs[1] = errs[1], errs[0] // the same order every time
	}
	return errs
}

// days returns the periods to store, with the defaults filled in.
func (r *RetentionConfig) days() (originals, closed int) {
	originals, closed = DefaultOriginalsDays, DefaultClosedPersonalDays
	if r != nil && r.OriginalsDays != nil {
		originals = *r.OriginalsDays
	}
	if r != nil && r.ClosedPersonalDays != nil {
		closed = *r.ClosedPersonalDays
	}
	return originals, closed
}

// ObjectDeleter removes an object from the object store; a missing object is no error. The
// models package does not know the store: its caller hands this in.
type ObjectDeleter func(ctx context.Context, key string) error

// ensureTombstone makes the tombstone user on first use. It cannot sign in: no device, no
// email, no password, disabled.
func (db *DB) ensureTombstone(ctx context.Context, now time.Time) error {
	now = now.UTC()
	u := User{ID: TombstoneID, Role: RoleCitizen, Disabled: true, ErasedAt: &now, CreatedAt: now, UpdatedAt: now}
	return translate(db.q(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&u).Error)
}

// PersonalData is what the city holds on a citizen besides their reports (which the caller
// pages through with ReporterCases).
type PersonalData struct {
	User            User
	Devices         []Device
	Contact         *Open311Contact // only for citizens who came through an Open311 client
	Supports        []Supporter
	Feedback        []CaseEvent // their confirmations, reopenings and ratings, with comments
	Notifications   []Notification
	IdempotencyKeys []IdempotencyKey
	Uploads         []Upload // direct uploads not attached to a report yet
	// Numbers are the case numbers of every case the above refer to, by case id.
	Numbers map[string]string
}

// PersonalDataOf gathers what the city holds on a citizen, for their export.
func (db *DB) PersonalDataOf(ctx context.Context, userID string) (*PersonalData, error) {
	u, err := db.User(ctx, userID)
	if err != nil {
		return nil, err
	}
	pd := &PersonalData{User: *u, Numbers: map[string]string{}}
	q := db.q(ctx)
	if err := q.Where("user_id = ?", userID).Order("created_at, id").Find(&pd.Devices).Error; err != nil {
		return nil, translate(err)
	}
	if ct, err := db.Open311ContactOf(ctx, userID); err == nil {
		pd.Contact = ct
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err := q.Where("user_id = ?", userID).Order("created_at, case_id").Find(&pd.Supports).Error; err != nil {
		return nil, translate(err)
	}
	// A citizen acts only on their own reports; through them the events are found by index.
	err = q.Table("case_events AS e").Select("e.*").Joins("JOIN cases AS c ON c.id = e.case_id").
		Where("c.reporter_id = ? AND e.actor_id = ? AND e.type IN ?", userID, userID, []Action{ActionConfirm, ActionReopen, ActionRate}).
		Order("e.created_at, e.id").Find(&pd.Feedback).Error
	if err != nil {
		return nil, translate(err)
	}
	if err := q.Where("user_id = ?", userID).Order("created_at, id").Find(&pd.Notifications).Error; err != nil {
		return nil, translate(err)
	}
	if err := q.Where("user_id = ?", userID).Order("created_at, key").Find(&pd.IdempotencyKeys).Error; err != nil {
		return nil, translate(err)
	}
	if err := q.Where("owner_id = ?", userID).Order("created_at, id").Find(&pd.Uploads).Error; err != nil {
		return nil, translate(err)
	}
	var ids []string
	for _, s := range pd.Supports {
		ids = append(ids, s.CaseID)
	}
	for _, e := range pd.Feedback {
		ids = append(ids, e.CaseID)
	}
	for _, n := range pd.Notifications {
		ids = append(ids, n.CaseID)
	}
	for _, k := range pd.IdempotencyKeys {
		ids = append(ids, k.CaseID)
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		var rows []Case
		if err := q.Select("id, number").Where("id IN ?", chunk).Find(&rows).Error; err != nil {
			return nil, translate(err)
		}
		for _, c := range rows {
			pd.Numbers[c.ID] = c.Number
		}
	}
	return pd, nil
}

// Erasure says what erasing a citizen did.
type Erasure struct {
	AlreadyErased    bool
	CasesAnonymised  int // closed cases, anonymised at once
	CasesUnlinked    int // open cases, kept for the work with the person unlinked
	OriginalsDeleted int
}

// EraseCitizen deletes a citizen's personal data at their request (DELETE /v1/me): their
// closed cases are anonymised, their open cases unlinked from them, the originals of their
// photos deleted (those still being processed by the photo task are deleted by the next
// retention run, once their stripped versions exist), and their devices, push tokens, inbox,
// supports, idempotency records, contact details and account details removed. The account
// stays as an empty, erased row, so that its tokens no longer work. Erasing twice is
// harmless.
func (db *DB) EraseCitizen(ctx context.Context, userID string, del ObjectDeleter, now time.Time) (*Erasure, error) {
	now = now.UTC()
	out := &Erasure{}
	u, err := db.User(ctx, userID)
	if err != nil {
		return nil, err
	}
	if u.ErasedAt != nil {
		out.AlreadyErased = true
		return out, nil
	}
	if u.Role != RoleCitizen || u.ID == TombstoneID {
		return nil, Problemf(ErrForbidden, "not-a-citizen", "only a citizen's account can be deleted this way")
	}
	if err := db.ensureTombstone(ctx, now); err != nil {
		return nil, err
	}
	// A report that arrives while this runs is found by the final check, and the work is
	// done again for it.
	for attempt := 0; ; attempt++ {
		for {
			var ids []string
			if err := db.q(ctx).Model(&Case{}).Where("reporter_id = ? AND status = ?", userID, StatusClosed).
				Order("id").Limit(PrivacyBatch).Pluck("id", &ids).Error; err != nil {
				return nil, translate(err)
			}
			if len(ids) == 0 {
				break
			}
			n, err := db.anonymiseCases(ctx, ids, del, now)
			if err != nil {
				return nil, err
			}
			out.CasesAnonymised += len(ids)
			out.OriginalsDeleted += n
		}
		for {
			var ids []string
			if err := db.q(ctx).Model(&Case{}).Where("reporter_id = ?", userID).
				Order("id").Limit(PrivacyBatch).Pluck("id", &ids).Error; err != nil {
				return nil, translate(err)
			}
			if len(ids) == 0 {
				break
			}
			n, err := db.unlinkCases(ctx, userID, ids, del, now)
			if err != nil {
				return nil, err
			}
			out.CasesUnlinked += len(ids)
			out.OriginalsDeleted += n
		}
		n, done, err := db.finishErasure(ctx, userID, del, now)
		if err != nil {
			return nil, err
		}
		out.OriginalsDeleted += n
		if done {
			return out, nil
		}
		if attempt == 3 {
			return nil, Problemf(ErrConflict, "reports-arriving", "new reports kept arriving while your data was being deleted; stop the app and try again")
		}
	}
}

// deleteParallel is how many objects are deleted at once: each deletion is a round trip to
// the object store, and a batch of them one after another was most of a batch's time.
const deleteParallel = 8

// deleteOriginals deletes photos' originals from the object store, a few at a time. It runs
// before the transaction that marks them (markOriginals), never inside it: no transaction
// waits on the object store.
func deleteOriginals(ctx context.Context, ms []Media, del ObjectDeleter) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deleteParallel)
	for _, m := range ms {
		g.Go(func() error {
			if err := del(gctx, m.ObjectKey); err != nil {
				return fmt.Errorf("delete original %s: %w", m.ObjectKey, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// markOriginals records that photos' originals are gone, and says how many were not marked
// yet.
func (db *DB) markOriginals(ctx context.Context, ms []Media, now time.Time) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	ids := make([]string, 0, len(ms))
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	res := db.q(ctx).Model(&Media{}).Where("id IN ? AND original_deleted_at IS NULL", ids).Update("original_deleted_at", now)
	return int(res.RowsAffected), translate(res.Error)
}

// eraseOriginals deletes photos' originals and marks them, and says how many it marked.
func (db *DB) eraseOriginals(ctx context.Context, ms []Media, del ObjectDeleter, now time.Time) (int, error) {
	if err := deleteOriginals(ctx, ms, del); err != nil {
		return 0, err
	}
	return db.markOriginals(ctx, ms, now)
}

// unlinkCases takes a citizen off their open cases: the cases point at the tombstone, their
// events no longer name them, the originals of their processed photos are deleted, and their
// idempotency records and Open311 identifiers for these cases are removed. What they wrote
// about the problem stays: the city needs it to fix it.
func (db *DB) unlinkCases(ctx context.Context, userID string, ids []string, del ObjectDeleter, now time.Time) (int, error) {
	var ms []Media
	if err := db.q(ctx).Where("case_id IN ? AND owner_id = ? AND original_deleted_at IS NULL AND processed_at IS NOT NULL", ids, userID).
		Find(&ms).Error; err != nil {
		return 0, translate(err)
	}
	if err := deleteOriginals(ctx, ms, del); err != nil {
		return 0, err
	}
	var n int
	err := db.InTx(ctx, func(tx *DB) error {
		var err error
		if n, err = tx.markOriginals(ctx, ms, now); err != nil {
			return err
		}
		q := func() *gorm.DB { return tx.q(ctx) }
		steps := []*gorm.DB{
			q().Model(&Case{}).Where("id IN ? AND reporter_id = ?", ids, userID).Update("reporter_id", TombstoneID),
			q().Model(&CaseEvent{}).Where("case_id IN ? AND actor_id = ?", ids, userID).Update("actor_id", nil),
			q().Model(&Media{}).Where("case_id IN ? AND owner_id = ?", ids, userID).Update("owner_id", TombstoneID),
			q().Where("case_id IN ? AND user_id = ?", ids, userID).Delete(&IdempotencyKey{}),
			q().Model(&Open311Request{}).Where("case_id IN ?", ids).Updates(map[string]any{"account_id": "", "device_id": ""}),
		}
		for _, s := range steps {
			if s.Error != nil {
				return s.Error
			}
		}
		return nil
	})
	return n, err
}

// finishErasure removes what is left of a citizen once no case points at them: photos they
// uploaded but never attached (direct uploads, objects first), devices with their push tokens and deliveries, inbox,
// supports, idempotency records, refresh tokens, Open311 contact details and the updates they
// posted through a client, and the account's own details. done is false when a case still
// points at them (a report that arrived meanwhile): nothing is removed then.
func (db *DB) finishErasure(ctx context.Context, userID string, del ObjectDeleter, now time.Time) (n int, done bool, err error) {
	var ms []Media
	if err := db.q(ctx).Where("owner_id = ? AND original_deleted_at IS NULL AND (case_id IS NULL OR processed_at IS NOT NULL)", userID).
		Find(&ms).Error; err != nil {
		return 0, false, translate(err)
	}
	// An upload never attached to a report goes whole, its versions too.
	for _, m := range ms {
		for _, k := range []*string{m.DisplayKey, m.ThumbKey} {
			if k != nil && m.CaseID == nil {
				if err := del(ctx, *k); err != nil {
					return 0, false, fmt.Errorf("delete %s: %w", *k, err)
				}
			}
		}
	}
	if err := deleteOriginals(ctx, ms, del); err != nil {
		return 0, false, err
	}
	var ups []Upload
	if err := db.q(ctx).Where("owner_id = ?", userID).Find(&ups).Error; err != nil {
		return 0, false, translate(err)
	}
	for _, up := range ups {
		if err := del(ctx, up.ObjectKey); err != nil {
			return 0, false, fmt.Errorf("delete upload %s: %w", up.ObjectKey, err)
		}
	}
	err = db.InTx(ctx, func(tx *DB) error {
		var left int64
		if err := tx.q(ctx).Model(&Case{}).Where("reporter_id = ?", userID).Count(&left).Error; err != nil {
			return err
		}
		if left > 0 {
			return nil
		}
		// The erased citizen's photos left (never attached) go to the tombstone before they are
		// marked, so that this finds them through the index of originals still kept.
		if err := tx.q(ctx).Model(&Media{}).Where("owner_id = ? AND original_deleted_at IS NULL", userID).Update("owner_id", TombstoneID).Error; err != nil {
			return err
		}
		var err error
		if n, err = tx.markOriginals(ctx, ms, now); err != nil {
			return err
		}
		q := func() *gorm.DB { return tx.q(ctx) }
		devices := q().Model(&Device{}).Select("id").Where("user_id = ?", userID)
		posted := q().Model(&Open311Update{}).Select("event_id").Where("author_id = ? AND event_id IS NOT NULL", userID)
		steps := []*gorm.DB{
			// An upload reserved meanwhile goes too; the sweeper removes its object if it
			// comes, as it does any object under uploads/ that no row claims.
			q().Where("owner_id = ?", userID).Delete(&Upload{}),
			q().Where("device_id IN (?)", devices).Delete(&Delivery{}),
			q().Where("user_id = ?", userID).Delete(&Device{}),
			q().Where("user_id = ?", userID).Delete(&Notification{}),
			q().Where("user_id = ?", userID).Delete(&Supporter{}),
			q().Where("user_id = ?", userID).Delete(&IdempotencyKey{}),
			q().Where("user_id = ?", userID).Delete(&RefreshToken{}),
			q().Where("user_id = ?", userID).Delete(&Open311Contact{}),
			q().Model(&CaseEvent{}).Where("id IN (?)", posted).Update("actor_id", nil),
			q().Model(&Open311Update{}).Where("author_id = ?", userID).Updates(map[string]any{"author_id": nil, "note": ""}),
			q().Model(&User{}).Where("id = ?", userID).Updates(map[string]any{
				"email": nil, "name": "", "password_hash": "", "disabled": true, "erased_at": now, "updated_at": now}),
		}
		for _, s := range steps {
			if s.Error != nil {
				return s.Error
			}
		}
		done = true
		return nil
	})
	return n, done, err
}

// anonymiseCases removes the personal data of closed cases: the reporter's link (to the
// tombstone) and the originals of their photos; the text the reporter wrote (description,
// address, free-text answers, their comments on events and through Open311 clients); the
// point of a sensitive category, rounded as the public view rounds it; supporters (the count
// stays), inbox entries, deliveries, idempotency records and Open311 identifiers; and the
// Open311 contact details of reporters left with no case. It returns how many originals it
// deleted.
func (db *DB) anonymiseCases(ctx context.Context, ids []string, del ObjectDeleter, now time.Time) (int, error) {
	var ms []Media
	if err := db.q(ctx).Where("case_id IN ? AND kind = ? AND original_deleted_at IS NULL", ids, MediaBefore).Find(&ms).Error; err != nil {
		return 0, translate(err)
	}
	if err := deleteOriginals(ctx, ms, del); err != nil {
		return 0, err
	}
	var n int
	err := db.InTx(ctx, func(tx *DB) error {
		var cases []Case
		if err := tx.q(ctx).Where("id IN ?", ids).Find(&cases).Error; err != nil {
			return err
		}
		var err error
		if n, err = tx.markOriginals(ctx, ms, now); err != nil {
			return err
		}
		cats := map[string]*Category{}
		reporters := map[string]bool{}
		for _, c := range cases {
			cat, ok := cats[c.CategoryID]
			if !ok {
				if cat, err = tx.Category(ctx, c.CategoryID); err != nil {
					return err
				}
				cats[c.CategoryID] = cat
			}
			reporters[c.ReporterID] = true
			// Only a case with free-text answers, or of a sensitive category, needs a
			// statement of its own; the rest change together below.
			own := map[string]any{}
			if kept, dropped := keptAnswers(cat, c.Attributes); dropped {
				own["attributes"] = kept
			}
			if cat.Sensitive {
				own["lat"], own["lon"] = math.Round(c.Lat*100)/100, math.Round(c.Lon*100)/100
			}
			if len(own) > 0 {
				if err := tx.q(ctx).Model(&Case{}).Where("id = ?", c.ID).Updates(own).Error; err != nil {
					return err
				}
			}
		}
		who := make([]string, 0, len(reporters))
		for id := range reporters {
			who = append(who, id)
		}
		q := func() *gorm.DB { return tx.q(ctx) }
		// Inbox entries and deliveries are found through the cases' events, and idempotency
		// records through their reporters: the indexes those tables have.
		events := q().Model(&CaseEvent{}).Select("id").Where("case_id IN ?", ids)
		steps := []*gorm.DB{
			q().Model(&Case{}).Where("id IN ?", ids).Updates(map[string]any{
				"reporter_id": TombstoneID, "description": "", "address": "", "anonymised_at": now}),
			// The citizen's own events, and the comments Open311 clients posted for a person
			// (the system acting for a named author).
			q().Model(&CaseEvent{}).Where("case_id IN ? AND (actor_role = ? OR (actor_role = ? AND actor_id IS NOT NULL))",
				ids, RoleCitizen, RoleSystem).Updates(map[string]any{"actor_id": nil, "note": ""}),
			q().Model(&Open311Update{}).Where("case_id IN ?", ids).Updates(map[string]any{"author_id": nil, "note": ""}),
			q().Model(&Open311Request{}).Where("case_id IN ?", ids).Updates(map[string]any{"account_id": "", "device_id": ""}),
			q().Model(&Media{}).Where("case_id IN ? AND kind = ?", ids, MediaBefore).Update("owner_id", TombstoneID),
			q().Where("case_id IN ?", ids).Delete(&Supporter{}),
			q().Where("event_id IN (?)", events).Delete(&Delivery{}),
			q().Where("event_id IN (?)", events).Delete(&Notification{}),
			q().Where("user_id IN ? AND case_id IN ?", who, ids).Delete(&IdempotencyKey{}),
		}
		for _, s := range steps {
			if s.Error != nil {
				return s.Error
			}
		}
		delete(reporters, TombstoneID)
		if len(reporters) == 0 {
			return nil
		}
		who = who[:0]
		for id := range reporters {
			who = append(who, id)
		}
		return q().Where("user_id IN ? AND NOT EXISTS (SELECT 1 FROM cases WHERE cases.reporter_id = open311_contacts.user_id)", who).
			Delete(&Open311Contact{}).Error
	})
	return n, err
}

// keptAnswers are the answers a case keeps once anonymised: numbers, dates and choices from
// the city's own lists. Free text (string and text questions) is the reporter's own words
// and goes, as does an answer to a question the category no longer asks. dropped says
// whether anything went.
func keptAnswers(cat *Category, attrs string) (kept string, dropped bool) {
	var answers map[string]any
	if err := json.Unmarshal([]byte(attrs), &answers); err != nil {
		return "{}", true
	}
	kinds := map[string]string{}
	for _, a := range CategoryAttributes(cat) {
		kinds[a.Code] = a.Datatype
	}
	keep := map[string]any{}
	for code, v := range answers {
		switch kinds[code] {
		case "number", "datetime", "singlevaluelist", "multivaluelist":
			keep[code] = v
		}
	}
	if len(keep) == len(answers) {
		return attrs, false
	}
	b, _ := json.Marshal(keep)
	return string(b), true
}

// AnonymiseClosedCases anonymises up to limit of a city's closed cases that closed before
// closedBefore and still hold personal data, oldest first, and says how many it did.
func (db *DB) AnonymiseClosedCases(ctx context.Context, jurisdictionID string, closedBefore time.Time, limit int, del ObjectDeleter, now time.Time) (int, error) {
	var ids []string
	err := db.q(ctx).Model(&Case{}).
		Where("jurisdiction_id = ? AND status = 'closed' AND anonymised_at IS NULL AND closed_at < ?", jurisdictionID, closedBefore.UTC()).
		Order("closed_at, id").Limit(limit).Pluck("id", &ids).Error
	if err != nil || len(ids) == 0 {
		return 0, translate(err)
	}
	if err := db.ensureTombstone(ctx, now); err != nil {
		return 0, err
	}
	if _, err := db.anonymiseCases(ctx, ids, del, now.UTC()); err != nil {
		return 0, err
	}
	return len(ids), nil
}

// EraseOldOriginals deletes up to limit originals of a city's photos stored before before,
// oldest first, once the photo task has finished with them (the stripped versions stay), and
// says how many it deleted. A photo still waiting for the task keeps its original until then.
func (db *DB) EraseOldOriginals(ctx context.Context, jurisdictionID string, before time.Time, limit int, del ObjectDeleter, now time.Time) (int, error) {
	var ms []Media
	err := db.q(ctx).Table("media AS m").Select("m.*").Joins("JOIN cases AS c ON c.id = m.case_id").
		Where("c.jurisdiction_id = ? AND m.original_deleted_at IS NULL AND m.processed_at IS NOT NULL AND m.created_at < ?",
			jurisdictionID, before.UTC()).
		Order("m.created_at, m.id").Limit(limit).Find(&ms).Error
	if err != nil {
		return 0, translate(err)
	}
	return db.eraseOriginals(ctx, ms, del, now.UTC())
}

// EraseLeftOriginals deletes up to limit originals of erased citizens' photos that were
// still being processed when they were erased, now that their versions exist, and says how
// many it deleted.
func (db *DB) EraseLeftOriginals(ctx context.Context, limit int, del ObjectDeleter, now time.Time) (int, error) {
	var ms []Media
	err := db.q(ctx).Where("owner_id = ? AND original_deleted_at IS NULL AND processed_at IS NOT NULL", TombstoneID).
		Order("created_at, id").Limit(limit).Find(&ms).Error
	if err != nil {
		return 0, translate(err)
	}
	return db.eraseOriginals(ctx, ms, del, now.UTC())
}
