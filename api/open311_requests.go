package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/city-eyes/cityeyes/models"
)

// open311ListRequests lists a city's requests (GET requests.{format}): those named by
// service_request_id, which overrides every other argument, or those matching service_code,
// status, start_date and end_date (the last 90 days by default, never more), newest first,
// 1,000 at most, a page at a time with page and page_size.
func (s *Server) open311ListRequests(c *fiber.Ctx) error {
	ctx := c.UserContext()
	format, err := open311Format(c)
	if err != nil {
		return err
	}
	p := queryParams(c)
	j, err := s.open311City(c, p, nil)
	if err != nil {
		return err
	}
	f := models.Open311Filter{JurisdictionID: j.ID}
	if f.Offset, f.Limit, err = open311Page(p); err != nil {
		return err
	}
	if ids := p.list("service_request_id"); len(ids) > 0 {
		if len(ids) > open311MaxIDs {
			return open311Invalid("service_request_id names %d requests; ask for at most %d at a time", len(ids), open311MaxIDs)
		}
		for _, id := range ids {
			if _, err := uuid.Parse(id); err == nil {
				f.IDs = append(f.IDs, id)
			} else {
				f.Numbers = append(f.Numbers, id)
			}
		}
	} else {
		if codes := p.list("service_code"); len(codes) > 0 {
			cats, err := s.db.AllCategories(ctx, j.ID)
			if err != nil {
				return err
			}
			for _, code := range codes {
				i := slices.IndexFunc(cats, func(cat models.Category) bool { return cat.Code == code })
				if i < 0 {
					return open311NotFound("service_code %q was not found in jurisdiction %s", code, j.ID)
				}
				f.CategoryIDs = append(f.CategoryIDs, cats[i].ID)
			}
		}
		for _, st := range p.list("status") {
			switch strings.ToLower(st) {
			case "open":
				f.Open = true
			case "closed":
				f.Closed = true
			default:
				return open311Invalid("status %q is not open or closed", st)
			}
		}
		if f.From, f.To, err = open311Window(p, s.now(), open311Location(j)); err != nil {
			return err
		}
	}
	cases, err := s.db.Open311Cases(ctx, f)
	if err != nil {
		return err
	}
	out, err := s.open311Requests(ctx, cases)
	if err != nil {
		return err
	}
	return writeOpen311List(c, fiber.StatusOK, format, "service_requests", out)
}

// open311GetRequest shows one request (GET requests/{service_request_id}.{format}), as a
// list of one, as the specification does. The id may also be the case's number.
func (s *Server) open311GetRequest(c *fiber.Ctx) error {
	format, err := open311Format(c)
	if err != nil {
		return err
	}
	cs, err := s.open311Case(c, queryParams(c), open311PathParam(c), "")
	if err != nil {
		return err
	}
	out, err := s.open311Requests(c.UserContext(), []models.Case{*cs})
	if err != nil {
		return err
	}
	return writeOpen311List(c, fiber.StatusOK, format, "service_requests", out)
}

// open311Token answers GET tokens/{token}.{format}. Every service here is "realtime": POST
// requests answers with the service_request_id itself and never hands out a token. For
// clients that ask all the same, a request's id serves as its own token.
func (s *Server) open311Token(c *fiber.Ctx) error {
	format, err := open311Format(c)
	if err != nil {
		return err
	}
	token := open311PathParam(c)
	cs, err := s.open311Case(c, queryParams(c), token, "token")
	if err != nil {
		return err
	}
	return writeOpen311List(c, fiber.StatusOK, format, "service_requests", []Open311Token{{ServiceRequestID: cs.ID, Token: token}})
}

// open311Case finds the case a request names, by id or by number, in the city the request
// names if it names one. what says what the id was, for the 404.
func (s *Server) open311Case(c *fiber.Ctx, p open311Params, id, what string) (*models.Case, error) {
	ctx := c.UserContext()
	if what == "" {
		what = "service_request_id"
	}
	notFound := open311NotFound("%s %q was not found", what, id)
	var (
		cs  *models.Case
		err error
	)
	if _, perr := uuid.Parse(id); perr == nil {
		cs, err = s.db.Case(ctx, id)
	} else {
		cs, err = s.db.CaseByNumber(ctx, id)
	}
	if errors.Is(err, models.ErrNotFound) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	if jid := p.get("jurisdiction_id"); jid != "" {
		if _, err := s.open311City(c, p, nil); err != nil {
			return nil, err
		}
		if !strings.EqualFold(jid, cs.JurisdictionID) {
			return nil, notFound
		}
	}
	return cs, nil
}

// open311Requests converts cases into their Open311 public view, looking up what they name
// (services, departments, notes, the Open311 extras) once for all of them.
func (s *Server) open311Requests(ctx context.Context, cases []models.Case) ([]Open311ServiceRequest, error) {
	out := make([]Open311ServiceRequest, 0, len(cases))
	if len(cases) == 0 {
		return out, nil
	}
	ids := make([]string, len(cases))
	for i, cs := range cases {
		ids[i] = cs.ID
	}
	notes, err := s.db.LatestPublicNotes(ctx, ids)
	if err != nil {
		return nil, err
	}
	extras, err := s.db.Open311RequestsOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	type city struct {
		loc   *time.Location
		cats  map[string]models.Category
		depts map[string]models.Department
	}
	cities := map[string]*city{}
	for _, cs := range cases {
		ct := cities[cs.JurisdictionID]
		if ct == nil {
			j, err := s.db.Jurisdiction(ctx, cs.JurisdictionID)
			if err != nil {
				return nil, err
			}
			ct = &city{loc: open311Location(j), cats: map[string]models.Category{}, depts: map[string]models.Department{}}
			cats, err := s.db.AllCategories(ctx, j.ID)
			if err != nil {
				return nil, err
			}
			for _, cat := range cats {
				ct.cats[cat.ID] = cat
			}
			depts, err := s.db.Departments(ctx, j.ID)
			if err != nil {
				return nil, err
			}
			for _, d := range depts {
				ct.depts[d.ID] = d
			}
			cities[cs.JurisdictionID] = ct
		}
		cat := ct.cats[cs.CategoryID]
		r := Open311ServiceRequest{
			ServiceRequestID: cs.ID, Status: open311Status(cs.Status), StatusNotes: notes[cs.ID],
			ServiceName: cat.Name, ServiceCode: cat.Code, Description: cs.Description,
			RequestedDatetime: open311Time(cs.CreatedAt, ct.loc), UpdatedDatetime: open311Time(cs.UpdatedAt, ct.loc),
			Address: cs.Address,
		}
		if cs.DepartmentID != nil {
			r.AgencyResponsible = ct.depts[*cs.DepartmentID].Name
		}
		if cs.DueAt != nil && models.IsOpen(cs.Status) {
			r.ExpectedDatetime = open311Time(*cs.DueAt, ct.loc)
		}
		extra, viaOpen311 := extras[cs.ID]
		if !viaOpen311 || extra.Located {
			lat, lon := cs.Lat, cs.Lon
			r.Lat, r.Long = &lat, &lon
		}
		// Photos are not shown: originals keep their EXIF (position, device), and the public
		// feed only ever shows stripped versions. A client's own media_url is shown as sent.
		r.MediaURL = extra.MediaURL
		out = append(out, r)
	}
	return out, nil
}

// open311Status is the specification's status: closed once the case is, open until then.
func open311Status(st models.Status) string {
	if models.IsOpen(st) {
		return "open"
	}
	return "closed"
}

// open311Form is a POST body as read, before it is checked.
type open311Form struct {
	params open311Params
	photos []models.Media
	// photoHashes are the photos' digests, for the request's fingerprint.
	photoHashes []string
}

// readOpen311Form reads a POST: its body, url-encoded as the specification says or
// multipart as the v2.1 draft allows (with media parts, which are stored under caseID as
// they arrive, or refused when media is false), then its query string, where some clients put
// jurisdiction_id and api_key. A multipart body must give its api_key (in the query or in a
// part) before its first photo: nothing is stored for a client without a valid key. On error,
// the photos already stored are in the result, for the caller to remove.
func (s *Server) readOpen311Form(c *fiber.Ctx, caseID string, media bool) (*open311Form, error) {
	in := &open311Form{params: open311Params{}}
	query := queryParams(c)
	defer func() {
		for k, vs := range query {
			in.params[k] = append(in.params[k], vs...)
		}
	}()
	body := c.Context().RequestBodyStream()
	if body == nil {
		body = bytes.NewReader(c.Body())
	}
	ctype := c.Get(fiber.HeaderContentType)
	mt, params, err := mime.ParseMediaType(ctype)
	switch {
	case ctype == "":
		// Some clients send everything in the query string and no body.
		_, _ = io.Copy(io.Discard, io.LimitReader(body, open311FormBytes))
		return in, nil
	case err == nil && mt == fiber.MIMEApplicationForm:
		b, err := io.ReadAll(io.LimitReader(body, open311FormBytes+1))
		if err != nil {
			return in, models.Problemf(models.ErrMalformed, "malformed", "the body cannot be read: %v", err)
		}
		if len(b) > open311FormBytes {
			return in, models.Problemf(models.ErrTooLarge, "too-large", "the form is over %d bytes", open311FormBytes)
		}
		vals, err := url.ParseQuery(string(b))
		if err != nil {
			return in, models.Problemf(models.ErrMalformed, "malformed", "the form cannot be read: %v", err)
		}
		for k, vs := range vals {
			for _, v := range vs {
				if !storableText(k) || !storableText(v) {
					return in, open311Invalid("parameter %q is not valid UTF-8 text, or has a NUL character", k)
				}
			}
			in.params[k] = vs
		}
		return in, nil
	case err == nil && mt == fiber.MIMEMultipartForm && params["boundary"] != "":
	default:
		return in, models.Problemf(models.ErrUnsupportedMedia, "unsupported-body",
			"send the parameters as application/x-www-form-urlencoded (or multipart/form-data, with media parts), not %q", ctype)
	}
	mr := multipart.NewReader(body, params["boundary"])
	keyChecked := false
	for fields := 0; ; fields++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return in, models.Problemf(models.ErrMalformed, "malformed", "the multipart body cannot be read: %v", err)
		}
		if fields >= open311MaxFields {
			return in, open311Invalid("the body has more than %d parts", open311MaxFields)
		}
		name := part.FormName()
		switch {
		case name == "media" || name == "media[]":
			if !media {
				return in, open311Invalid("this resource takes no media parts; send media_url")
			}
			if !keyChecked {
				p := open311Params{}
				for k, vs := range in.params {
					p[k] = vs
				}
				for k, vs := range query {
					p[k] = append(p[k], vs...)
				}
				if _, err := s.open311Key(c, p); err != nil {
					return in, err
				}
				keyChecked = true
			}
			if len(in.photoHashes) >= s.cfg.MaxPhotos {
				return in, open311Invalid("a request takes at most %d media parts", s.cfg.MaxPhotos)
			}
			m, hash, _, err := s.receivePhoto(c.UserContext(), part, caseID, "", models.MediaBefore, true)
			if m != nil {
				in.photos = append(in.photos, *m)
			}
			if err != nil {
				return in, err
			}
			in.photoHashes = append(in.photoHashes, hash)
		case name != "":
			v, err := io.ReadAll(io.LimitReader(part, open311FieldBytes+1))
			if err != nil {
				return in, models.Problemf(models.ErrMalformed, "malformed", "part %q cannot be read: %v", name, err)
			}
			if len(v) > open311FieldBytes {
				return in, models.Problemf(models.ErrTooLarge, "too-large", "part %q is over %d bytes", name, open311FieldBytes)
			}
			if !storableText(name) || !storableText(string(v)) {
				return in, open311Invalid("part %q is not valid UTF-8 text, or has a NUL character", name)
			}
			in.params.add(name, string(v))
		}
		part.Close()
	}
	return in, nil
}

// attributeParam matches attribute[code], attribute[code][] and attribute[code][n].
var attributeParam = regexp.MustCompile(`^attribute\[([^\[\]]+)\](\[[^\[\]]*\])?$`)

// open311Answers collects the attribute parameters: a question answered once is a string,
// one answered several times (a multivaluelist) a list.
func open311Answers(p open311Params) map[string]any {
	lists := map[string][]string{}
	for name := range p {
		m := attributeParam.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		for _, v := range p[name] {
			if v = strings.TrimSpace(v); v != "" {
				lists[m[1]] = append(lists[m[1]], v)
			}
		}
	}
	out := map[string]any{}
	for code, vs := range lists {
		if len(vs) == 1 {
			out[code] = vs[0]
		} else {
			sort.Strings(vs)
			out[code] = vs
		}
	}
	return out
}

// checkText checks a free-text parameter: UTF-8, and at most max characters.
func checkText(name, v string, max int) error {
	if !utf8.ValidString(v) {
		return open311Invalid("%s is not UTF-8 text", name)
	}
	if n := utf8.RuneCountInString(v); n > max {
		return open311Invalid("%s has %d characters; the limit is %d", name, n, max)
	}
	return nil
}

// checkMediaURL checks a media_url: an absolute http or https URL.
func checkMediaURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(v) > open311MaxURLBytes {
		return open311Invalid("media_url %q is not an http or https URL", v)
	}
	return nil
}

// open311Reporter reads and checks the person details of a request or an update.
func open311Reporter(p open311Params) (models.ReporterDetails, error) {
	d := models.ReporterDetails{Email: p.get("email"), FirstName: p.get("first_name"), LastName: p.get("last_name"), Phone: p.get("phone")}
	if d.Email != "" {
		a, err := mail.ParseAddress(d.Email)
		if err != nil || a.Address != d.Email || len(d.Email) > 254 {
			return d, open311Invalid("email %q is not an email address", d.Email)
		}
	}
	for name, v := range map[string]string{"first_name": d.FirstName, "last_name": d.LastName, "phone": d.Phone} {
		if err := checkText(name, v, open311MaxNameLen); err != nil {
			return d, err
		}
	}
	return d, nil
}

// open311Intake is a POSTed request, checked and placed.
type open311Intake struct {
	key      *models.Open311Key
	newCase  models.NewCase
	extra    models.Open311Request
	reporter models.ReporterDetails
	category *models.Category
}

// checkOpen311Request checks a POSTed request in the specification's order (api_key,
// jurisdiction, service_code, location, then the rest) and places it: its city, its area.
func (s *Server) checkOpen311Request(c *fiber.Ctx, in *open311Form, caseID string) (*open311Intake, error) {
	ctx := c.UserContext()
	p := in.params
	key, err := s.open311Key(c, p)
	if err != nil {
		return nil, err
	}
	j, err := s.open311City(c, p, key)
	if err != nil {
		return nil, err
	}
	if j.ID != key.JurisdictionID {
		return nil, open311Forbidden("this api_key writes to jurisdiction %s, not %s", key.JurisdictionID, j.ID)
	}
	code := p.get("service_code")
	if code == "" {
		return nil, open311Invalid("service_code was not provided: it is one of those GET services.xml lists")
	}
	cat, err := s.db.CategoryByCode(ctx, j.ID, code)
	if errors.Is(err, models.ErrNotFound) {
		return nil, open311NotFound("service_code %q was not found in jurisdiction %s", code, j.ID)
	}
	if err != nil {
		return nil, err
	}
	out := &open311Intake{key: key, category: cat}
	out.newCase = models.NewCase{ID: caseID, JurisdictionID: j.ID, CategoryID: cat.ID, Media: in.photos}
	out.extra = models.Open311Request{CaseID: caseID, Client: key.Name, Located: true}
	address := p.get("address_string")
	switch latS, longS := p.get("lat"), p.get("long"); {
	case latS != "" || longS != "":
		if latS == "" || longS == "" {
			return nil, open311Invalid("lat and long go together: send both")
		}
		lat, err := coordinate(latS, "lat", 90)
		if err != nil {
			return nil, err
		}
		lon, err := coordinate(longS, "long", 180)
		if err != nil {
			return nil, err
		}
		loc, ok := s.cfg.Areas().Locate(lat, lon)
		if !ok {
			return nil, open311Invalid("lat/long %v, %v lies outside every jurisdiction served here", lat, lon)
		}
		if loc.JurisdictionID != j.ID {
			return nil, open311Forbidden("lat/long %v, %v lies in jurisdiction %s; this api_key writes to %s", lat, lon, loc.JurisdictionID, j.ID)
		}
		out.newCase.Lat, out.newCase.Lon, out.newCase.AreaID = lat, lon, loc.AreaID
	case address != "":
		// No geocoder here: the case is filed at the city's centre, in no area (so routed by
		// its service alone), and no Open311 answer shows that point as its place.
		lat, lon, err := s.db.JurisdictionCentre(ctx, j.ID)
		if err != nil {
			return nil, err
		}
		out.newCase.Lat, out.newCase.Lon, out.extra.Located = lat, lon, false
	case p.get("address_id") != "":
		return nil, open311Invalid("address_id %q means nothing here (there is no address register): send lat and long, or address_string", p.get("address_id"))
	default:
		return nil, open311Invalid("no location: send lat and long, or address_string")
	}
	if err := checkText("address_string", address, 500); err != nil {
		return nil, err
	}
	out.newCase.Address = address
	desc := p.get("description")
	if err := checkText("description", desc, open311MaxText); err != nil {
		return nil, err
	}
	out.newCase.Description = desc
	out.extra.MediaURL = p.get("media_url")
	if err := checkMediaURL(out.extra.MediaURL); err != nil {
		return nil, err
	}
	out.extra.AccountID, out.extra.DeviceID = p.get("account_id"), p.get("device_id")
	for name, v := range map[string]string{"account_id": out.extra.AccountID, "device_id": out.extra.DeviceID} {
		if err := checkText(name, v, open311MaxNameLen); err != nil {
			return nil, err
		}
	}
	if out.reporter, err = open311Reporter(p); err != nil {
		return nil, err
	}
	// Clients send attributes of their own besides the service's (FixMyStreet sends its
	// report's URL, title and ids); those are left out rather than refused.
	answers := open311Answers(p)
	known := map[string]bool{}
	for _, a := range models.CategoryAttributes(cat) {
		known[a.Code] = true
	}
	for code := range answers {
		if !known[code] {
			delete(answers, code)
		}
	}
	if out.newCase.Attributes, err = models.ValidateAnswers(cat, answers); err != nil {
		return nil, err
	}
	return out, nil
}

// fingerprint digests what a request says (every parameter but the key itself, the client's
// key and its photos), so that a retry of the same request is recognised.
func (in *open311Form) fingerprint(key *models.Open311Key) string {
	h := sha256.New()
	fmt.Fprintf(h, "k\x00%s\x00", key.KeySHA256)
	names := make([]string, 0, len(in.params))
	for name := range in.params {
		if name != "api_key" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		vs := slices.Clone(in.params[name])
		sort.Strings(vs)
		fmt.Fprintf(h, "f\x00%s\x00%s\x00", name, strings.Join(vs, "\x01"))
	}
	for _, ph := range in.photoHashes {
		fmt.Fprintf(h, "p\x00%s\x00", ph)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// open311CreateRequest files a request (POST requests.{format}) as a case like any other:
// the same intake checks, CreateCase (so the same lifecycle, routing, deadlines and pushes),
// its reporter a citizen found or made by email, whose details are kept as personal data and
// never shown to a client. Clients send no Idempotency-Key, so a request is recognised by
// its content: the same client sending the same request on the same (UTC) day gets the
// first answer back, as a retry should, instead of a second case.
func (s *Server) open311CreateRequest(c *fiber.Ctx) error {
	ctx := c.UserContext()
	format, err := open311Format(c)
	if err != nil {
		return err
	}
	caseID := models.NewID()
	in, err := s.readOpen311Form(c, caseID, true)
	cleanup := func() { s.removePhotos(ctx, in.photos) }
	if err != nil {
		cleanup()
		return err
	}
	intake, err := s.checkOpen311Request(c, in, caseID)
	if err != nil {
		cleanup()
		return err
	}
	now := s.now()
	fp := in.fingerprint(intake.key)
	// A client's own Idempotency-Key is honoured, within that client's keys.
	key := "open311:" + fp[:32] + ":" + now.UTC().Format("2006-01-02")
	if own := strings.TrimSpace(c.Get("Idempotency-Key")); own != "" {
		if len(own) > 150 {
			cleanup()
			return open311Invalid("Idempotency-Key is over 150 characters")
		}
		key = "open311:" + intake.key.KeySHA256[:16] + ":" + own
	}
	reply := func(id string) error {
		created := Open311Created{ServiceRequestID: id}
		if intake.category.SLAHours > 0 {
			created.ServiceNotice = fmt.Sprintf("%s: the city aims to deal with it within %d hours of passing it to the department responsible.", intake.category.Name, intake.category.SLAHours)
		}
		return writeOpen311List(c, fiber.StatusOK, format, "service_requests", []Open311Created{created})
	}
	// A retry of a request whose reporter gave no email finds no citizen to recognise: it
	// is recognised by its key alone.
	if prior, err := s.db.Open311Replay(ctx, key); err == nil {
		cleanup()
		if prior.Fingerprint != fp {
			return models.IdempotencyMismatch()
		}
		return reply(prior.CaseID)
	} else if !errors.Is(err, models.ErrNotFound) {
		cleanup()
		return err
	}
	user, err := s.db.EnsureOpen311Reporter(ctx, intake.reporter, now)
	if err != nil {
		cleanup()
		return err
	}
	nc := intake.newCase
	nc.ReporterID, nc.IdempotencyKey, nc.Fingerprint = user.ID, key, fp
	for i := range nc.Media {
		nc.Media[i].OwnerID = user.ID
	}
	intake.extra.CreatedAt = now.UTC()
	if err := s.db.SaveOpen311Request(ctx, &intake.extra); err != nil {
		cleanup()
		return err
	}
	created, err := s.db.CreateCase(ctx, nc, now)
	if err != nil {
		cleanup()
		if derr := s.db.DeleteOpen311Request(context.WithoutCancel(ctx), caseID); derr != nil {
			s.log.Warn("open311: could not remove the record of a request not filed", "case", caseID, "err", derr)
		}
		var again *models.ErrReplay
		if errors.As(err, &again) {
			return reply(again.CaseID)
		}
		return err
	}
	return reply(created.ID)
}
